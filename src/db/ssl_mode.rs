//! [`SslMode`]: libpq's `sslmode`, parsed, and what tokio-postgres is told
//! for each (see [`super::connect`] for the table of what each mode does).
//!
//! Its own module because both the connection-string parser (`connect`)
//! and the rustls configuration (`tls`, only with the `tls` feature) need
//! it, and `connect` uses `tls`: with the type here, both depend on this
//! module and `tls` no longer reaches back into `connect`.

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Never encrypt.
    Disable,
    /// Encrypt when the server asks (treated as `prefer`).
    Allow,
    /// Encrypt when the server can (the default).
    Prefer,
    /// Always encrypt.
    Require,
    /// Encrypt and check the certificate chain.
    VerifyCa,
    /// Encrypt and check the chain and the host name.
    VerifyFull,
}

impl SslMode {
    pub(super) fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other}: expected disable, allow, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }

    /// What tokio-postgres is told.
    pub(super) fn driver_mode(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow | Self::Prefer => "prefer",
            Self::Require | Self::VerifyCa | Self::VerifyFull => "require",
        }
    }
}
