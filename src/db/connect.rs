//! Connection strings with libpq's TLS options, and the connector they ask
//! for.
//!
//! tokio-postgres understands `sslmode=disable|prefer|require`, rejects
//! libpq's `verify-ca`, `verify-full` and `sslrootcert`, and brings no TLS
//! of its own. Managed Postgres services (RDS, Cloud SQL, Azure) require TLS
//! and document `sslmode=verify-full&sslrootcert=...`, so perfscope takes
//! the libpq options out of the string, hands tokio-postgres the rest, and
//! (with the `tls` feature) builds a rustls connector that checks the
//! server as libpq would:
//!
//! | `sslmode`            | encrypted        | certificate checked                  |
//! |----------------------|------------------|--------------------------------------|
//! | `disable`            | no               | —                                    |
//! | `allow`, `prefer`    | if the server can | only with `sslrootcert` (chain)     |
//! | `require`            | yes              | only with `sslrootcert` (chain)      |
//! | `verify-ca`          | yes              | chain                                |
//! | `verify-full`        | yes              | chain and host name                  |
//!
//! The chain is checked against `sslrootcert` (a PEM file) or, when it is
//! unset or `system`, the Mozilla roots compiled into the binary (so a
//! distroless image needs no CA bundle). `prefer` is the default, as in
//! libpq. Client certificates (`sslcert`, `sslkey`) are refused with a
//! clear error rather than ignored.

use std::path::PathBuf;

pub use super::ssl_mode::SslMode;

/// A parsed connection string.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// What tokio-postgres connects with.
    pub config: tokio_postgres::Config,
    /// The libpq `sslmode` asked for.
    pub ssl_mode: SslMode,
    /// `sslrootcert`, when given (`None` for unset or `system`).
    pub root_cert: Option<PathBuf>,
}

impl ConnectOptions {
    /// Parses a URL-form (`postgres://…?sslmode=verify-full`) or
    /// key/value-form (`host=… sslmode=…`) connection string. Errors never
    /// contain the password.
    pub fn parse(dsn: &str) -> Result<Self, String> {
        let mut ssl_mode = SslMode::Prefer;
        let mut root_cert = None;
        let mut take = |key: &str, value: &str| -> Result<bool, String> {
            match key {
                "sslmode" => ssl_mode = SslMode::parse(value)?,
                "sslrootcert" => {
                    root_cert = (value != "system").then(|| PathBuf::from(value));
                }
                "sslcert" | "sslkey" | "sslpassword" => {
                    return Err(format!(
                        "{key}: client certificates are not supported; use password or trust authentication"
                    ));
                }
                _ => return Ok(false),
            }
            Ok(true)
        };
        let rest = if let Some(query_start) = url_query_start(dsn) {
            let mut kept = Vec::new();
            for pair in dsn[query_start + 1..].split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !take(key, &percent_decode(value))? {
                    kept.push(pair);
                }
            }
            let base = &dsn[..query_start];
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        } else if dsn.contains("://") {
            dsn.to_owned()
        } else {
            let mut kept = Vec::new();
            for (key, value) in key_value_pairs(dsn)? {
                if !take(&key, &value)? {
                    kept.push(format!("{key}={}", quote_value(&value)));
                }
            }
            kept.join(" ")
        };
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| e.to_string())?;
        config.ssl_mode(match ssl_mode.driver_mode() {
            "disable" => tokio_postgres::config::SslMode::Disable,
            "prefer" => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(Self {
            config,
            ssl_mode,
            root_cert,
        })
    }

    /// The connector this string asks for. Reads `sslrootcert`.
    pub fn connector(&self) -> Result<Connector, String> {
        if self.ssl_mode == SslMode::Disable {
            return Ok(Connector::Plain);
        }
        #[cfg(feature = "tls")]
        {
            super::tls::rustls_connector(self.ssl_mode, self.root_cert.as_deref())
                .map(Connector::Rustls)
        }
        #[cfg(not(feature = "tls"))]
        {
            match self.ssl_mode {
                SslMode::Allow | SslMode::Prefer if self.root_cert.is_none() => {
                    Ok(Connector::Plain)
                }
                mode => Err(format!(
                    "sslmode={} needs perfscope built with the `tls` feature",
                    mode.driver_mode()
                )),
            }
        }
    }
}

/// How connections are made: plain, or TLS by rustls.
#[derive(Clone)]
pub enum Connector {
    /// No TLS.
    Plain,
    /// TLS with the verification `sslmode` asks for.
    #[cfg(feature = "tls")]
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain => f.write_str("Connector::Plain"),
            #[cfg(feature = "tls")]
            Self::Rustls(_) => f.write_str("Connector::Rustls"),
        }
    }
}

impl Connector {
    /// A deadpool manager connecting with this connector.
    pub fn manager(
        self,
        config: tokio_postgres::Config,
        manager_config: deadpool_postgres::ManagerConfig,
    ) -> deadpool_postgres::Manager {
        match self {
            Self::Plain => deadpool_postgres::Manager::from_config(
                config,
                tokio_postgres::NoTls,
                manager_config,
            ),
            #[cfg(feature = "tls")]
            Self::Rustls(tls) => {
                deadpool_postgres::Manager::from_config(config, tls, manager_config)
            }
        }
    }

    /// Asks the server to cancel what `token`'s connection runs (over a
    /// new connection, TLS as configured).
    pub async fn cancel(
        &self,
        token: &tokio_postgres::CancelToken,
    ) -> Result<(), tokio_postgres::Error> {
        match self {
            Self::Plain => token.cancel_query(tokio_postgres::NoTls).await,
            #[cfg(feature = "tls")]
            Self::Rustls(tls) => token.cancel_query(tls.clone()).await,
        }
    }

    /// One connection outside any pool; its connection task is spawned
    /// and ends when the client is dropped.
    pub async fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        match self {
            Self::Plain => {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                Ok(client)
            }
            #[cfg(feature = "tls")]
            Self::Rustls(tls) => {
                let (client, connection) = config.connect(tls.clone()).await?;
                tokio::spawn(connection);
                Ok(client)
            }
        }
    }
}

/// The index of the `?` that starts a URL's query, if it has one.
fn url_query_start(dsn: &str) -> Option<usize> {
    let scheme_end = dsn.find("://")?;
    dsn[scheme_end..].find('?').map(|i| scheme_end + i)
}

/// Decodes `%XX` escapes (malformed ones are kept as they are).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `key=value` pairs of a libpq key/value connection string; values may
/// be single-quoted with `\'` and `\\` escapes.
fn key_value_pairs(dsn: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("{key}: expected `=` after the option name"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(format!("{key}: unterminated quoted value")),
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("{key}: unterminated quoted value")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        pairs.push((key, value));
    }
}

/// A key/value-form value, quoted.
fn quote_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_options_are_taken_out() {
        let options = ConnectOptions::parse(
            "postgres://app:pw@db.example.com:5432/shop?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=api",
        )
        .expect("parses");
        assert_eq!(options.ssl_mode, SslMode::VerifyFull);
        assert_eq!(options.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(options.config.get_application_name(), Some("api"));
        assert_eq!(options.config.get_dbname(), Some("shop"));
        assert_eq!(
            options.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn key_value_options_are_taken_out() {
        let options = ConnectOptions::parse(
            "host=db port=5433 password='it\\'s secret' sslmode=verify-ca sslrootcert=system dbname=shop",
        )
        .expect("parses");
        assert_eq!(options.ssl_mode, SslMode::VerifyCa);
        assert_eq!(options.root_cert, None);
        assert_eq!(options.config.get_password(), Some(&b"it's secret"[..]));
        assert_eq!(options.config.get_dbname(), Some("shop"));
    }

    #[test]
    fn the_default_is_prefer() {
        let options = ConnectOptions::parse("postgres://app@localhost/shop").expect("parses");
        assert_eq!(options.ssl_mode, SslMode::Prefer);
        assert_eq!(
            options.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
    }

    #[test]
    fn bad_options_are_named_without_the_password() {
        let error = ConnectOptions::parse("postgres://app:hunter2@localhost/shop?sslmode=always")
            .expect_err("bad sslmode");
        assert!(error.contains("sslmode=always"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let error = ConnectOptions::parse("host=db password=hunter2 sslcert=/c.pem")
            .expect_err("client certificates");
        assert!(error.contains("sslcert"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn percent_escapes() {
        assert_eq!(percent_decode("%2Fa%20b"), "/a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
