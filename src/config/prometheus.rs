//! Where the route charts read from when one process is not enough:
//! `PERFSCOPE_PROMETHEUS_URL` (a Prometheus server's HTTP API) and
//! `PERFSCOPE_PROMETHEUS_SELECTOR` (the label matchers that pick this
//! service's series out of everything that server scrapes).
//!
//! The selector is parsed here, once, into matchers and rendered back in a
//! canonical form, so what reaches PromQL is only ever names and quoted,
//! escaped values this parser produced: a typo fails at start-up naming
//! the variable instead of turning every page into a Prometheus error, and
//! no text of the setting can close the selector's braces and append a
//! query of its own.

use std::fmt;

use super::{ConfigError, RawConfig};

/// Longest selector accepted, bytes.
const MAX_SELECTOR_BYTES: usize = 1024;
/// Most matchers in a selector.
const MAX_MATCHERS: usize = 16;
/// Longest URL accepted, bytes.
const MAX_URL_BYTES: usize = 512;

/// The Prometheus the route charts read from; `None` when unset (the
/// pages show this process's own view).
#[derive(Clone, Debug, Default)]
pub struct PrometheusConfig {
    /// The server and the selector, both given.
    pub source: Option<PrometheusSource>,
}

/// A Prometheus server and the series of this service on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusSource {
    /// Base URL of the server (the HTTP API is under `api/v1/` of it), with
    /// a trailing `/`.
    pub url: String,
    /// This service's label matchers.
    pub selector: Selector,
}

/// How a matcher compares a label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    fn text(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }
}

/// One label matcher, e.g. `job="shop"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// The label's name (`[a-zA-Z_][a-zA-Z0-9_]*`).
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value, unescaped.
    pub value: String,
}

/// Label matchers, parsed; `Display` renders them for a PromQL selector
/// (`job="shop",namespace="prod"`), every value quoted and escaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector(Vec<Matcher>);

impl Selector {
    /// The matchers, in the order given.
    pub fn matchers(&self) -> &[Matcher] {
        &self.0
    }

    /// Parses `job="shop",namespace="prod"` (braces optional; values in
    /// double quotes with `\"`, `\\` and `\n` escapes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() > MAX_SELECTOR_BYTES {
            return Err(format!("expected at most {MAX_SELECTOR_BYTES} bytes"));
        }
        let inner = match text.strip_prefix('{') {
            Some(rest) => rest.strip_suffix('}').ok_or("expected a closing }")?.trim(),
            None => text,
        };
        let mut matchers = Vec::new();
        let mut rest = inner;
        while !rest.trim_start().is_empty() {
            let (matcher, after) = matcher(rest.trim_start())?;
            if matchers.len() == MAX_MATCHERS {
                return Err(format!("expected at most {MAX_MATCHERS} matchers"));
            }
            matchers.push(matcher);
            let after = after.trim_start();
            rest = match after.strip_prefix(',') {
                Some(next) => next,
                None if after.is_empty() => after,
                None => return Err("expected , between matchers".into()),
            };
        }
        if matchers.is_empty() {
            return Err("expected at least one matcher, e.g. job=\"shop\"".into());
        }
        Ok(Self(matchers))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}{}\"", m.name, m.op.text())?;
            for c in m.value.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

/// One matcher at the start of `text`, and what follows it.
fn matcher(text: &str) -> Result<(Matcher, &str), String> {
    let name_len = text
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || *c == '_' || (*i > 0 && c.is_ascii_digit())))
        .map_or(text.len(), |(i, _)| i);
    if name_len == 0 {
        return Err("expected a label name".into());
    }
    let name = &text[..name_len];
    // The queries group by these and select the metric by name: a matcher
    // on them would change what the charts mean.
    if matches!(name, "__name__" | "le" | "method" | "route" | "status_code") {
        return Err(format!("{name} is set by the queries themselves"));
    }
    let rest = text[name_len..].trim_start();
    let (op, rest) = [
        ("=~", MatchOp::Regex),
        ("!~", MatchOp::NotRegex),
        ("!=", MatchOp::NotEqual),
        ("=", MatchOp::Equal),
    ]
    .into_iter()
    .find_map(|(t, op)| rest.strip_prefix(t).map(|r| (op, r)))
    .ok_or_else(|| format!("expected =, !=, =~ or !~ after {name}"))?;
    let rest = rest
        .trim_start()
        .strip_prefix('"')
        .ok_or_else(|| format!("expected a double-quoted value for {name}"))?;
    let mut value = String::new();
    let mut chars = rest.char_indices();
    loop {
        match chars.next() {
            None => return Err(format!("the value of {name} has no closing quote")),
            Some((i, '"')) => {
                let matcher = Matcher {
                    name: name.to_owned(),
                    op,
                    value,
                };
                return Ok((matcher, &rest[i + 1..]));
            }
            Some((_, '\\')) => match chars.next() {
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, 'n')) => value.push('\n'),
                _ => return Err(format!("the value of {name} has an unknown escape")),
            },
            Some((_, c)) if c.is_control() => {
                return Err(format!("the value of {name} has a control character"));
            }
            Some((_, c)) => value.push(c),
        }
    }
}

/// `PERFSCOPE_PROMETHEUS_URL`: `http(s)://host[:port][/prefix]`, with no
/// credentials, query or fragment (they would end up in the pages).
fn url(value: &str) -> Result<String, ConfigError> {
    let refuse = |expected: &str| {
        ConfigError::new(
            "PERFSCOPE_PROMETHEUS_URL",
            &value.chars().take(80).collect::<String>(),
            expected,
        )
    };
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| refuse("expected an http:// or https:// URL"))?;
    if value.len() > MAX_URL_BYTES
        || value.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '"' | '<' | '>')
        })
    {
        return Err(refuse(
            "expected a URL without spaces, query or fragment, of at most 512 bytes",
        ));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.contains('@') {
        return Err(ConfigError::new(
            "PERFSCOPE_PROMETHEUS_URL",
            "***",
            "expected a URL without credentials",
        ));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => (name, Some(port)),
        _ => (host, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let name_ok = !name.is_empty()
        && (name.starts_with('[')
            || name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    if !port_ok || !name_ok {
        return Err(refuse("expected a host and an optional port"));
    }
    let mut url = value.to_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    Ok(url)
}

/// A value that is set and not blank, trimmed.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl PrometheusConfig {
    /// Checks `PERFSCOPE_PROMETHEUS_URL` and `PERFSCOPE_PROMETHEUS_SELECTOR`
    /// of `raw`: both or neither.
    pub(super) fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let url_text = given(raw.prometheus_url.as_deref());
        let selector_text = given(raw.prometheus_selector.as_deref());
        let (url_text, selector_text) = match (url_text, selector_text) {
            (None, None) => return Ok(Self::default()),
            (Some(url), Some(selector)) => (url, selector),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "PERFSCOPE_PROMETHEUS_SELECTOR",
                    "",
                    "expected label matchers such as job=\"shop\" with PERFSCOPE_PROMETHEUS_URL",
                ));
            }
            (None, Some(selector)) => {
                return Err(ConfigError::new(
                    "PERFSCOPE_PROMETHEUS_URL",
                    "",
                    format!(
                        "expected a Prometheus URL with PERFSCOPE_PROMETHEUS_SELECTOR={selector}"
                    ),
                ));
            }
        };
        if !cfg!(feature = "prometheus") {
            return Err(ConfigError::new(
                "PERFSCOPE_PROMETHEUS_URL",
                url_text,
                "expected a build with the prometheus feature",
            ));
        }
        let selector = Selector::parse(selector_text).map_err(|why| {
            ConfigError::new(
                "PERFSCOPE_PROMETHEUS_SELECTOR",
                &selector_text.chars().take(80).collect::<String>(),
                format!("expected label matchers such as job=\"shop\",namespace=\"prod\": {why}"),
            )
        })?;
        Ok(Self {
            source: Some(PrometheusSource {
                url: url(url_text)?,
                selector,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_render_canonically() {
        let selector =
            Selector::parse(r#"{ job = "shop" , namespace=~"prod|stage",team!="a\"b\\c" }"#)
                .expect("valid");
        assert_eq!(selector.matchers().len(), 3);
        assert_eq!(selector.matchers()[1].op, MatchOp::Regex);
        assert_eq!(selector.matchers()[2].value, "a\"b\\c");
        assert_eq!(
            selector.to_string(),
            r#"job="shop",namespace=~"prod|stage",team!="a\"b\\c""#
        );
        assert_eq!(Selector::parse(&selector.to_string()), Ok(selector));
    }

    #[test]
    fn bad_selectors_are_refused() {
        for bad in [
            "",
            "{}",
            "job",
            "job=shop",
            "job='shop'",
            r#"job="shop"}"#,
            r#"{job="shop""#,
            r#"job="shop" namespace="prod""#,
            r#"job="shop"} or up{x="1""#,
            r#"job="sh\op""#,
            r#"le="0.1""#,
            r#"route="/x""#,
            r#"1job="x""#,
            "job=\"a\u{7}b\"",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    fn validate(
        url: Option<&str>,
        selector: Option<&str>,
    ) -> Result<PrometheusConfig, ConfigError> {
        PrometheusConfig::from_raw(&RawConfig {
            prometheus_url: url.map(Into::into),
            prometheus_selector: selector.map(Into::into),
            ..Default::default()
        })
    }

    #[test]
    fn url_and_selector_come_together() {
        assert!(
            validate(None, None)
                .expect("unset is valid")
                .source
                .is_none()
        );
        let source = validate(Some("http://prom:9090"), Some(r#"job="shop""#))
            .expect("valid")
            .source
            .expect("set");
        assert_eq!(source.url, "http://prom:9090/");
        assert_eq!(source.selector.to_string(), r#"job="shop""#);
        let alone = validate(Some("http://prom:9090"), None).expect_err("needs a selector");
        assert_eq!(alone.var, "PERFSCOPE_PROMETHEUS_SELECTOR");
        let alone = validate(None, Some(r#"job="shop""#)).expect_err("needs a URL");
        assert_eq!(alone.var, "PERFSCOPE_PROMETHEUS_URL");
        let bad = validate(Some("http://prom:9090"), Some("job=shop")).expect_err("bad matchers");
        assert!(
            bad.to_string()
                .starts_with("PERFSCOPE_PROMETHEUS_SELECTOR=job=shop: expected label matchers"),
            "{bad}"
        );
        let bad = validate(Some("prom:9090"), Some(r#"job="shop""#)).expect_err("bad URL");
        assert_eq!(
            bad.to_string(),
            "PERFSCOPE_PROMETHEUS_URL=prom:9090: expected an http:// or https:// URL"
        );
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            url("http://127.0.0.1:9090").as_deref(),
            Ok("http://127.0.0.1:9090/")
        );
        assert_eq!(
            url("https://prom.example/prometheus/").as_deref(),
            Ok("https://prom.example/prometheus/")
        );
        for bad in [
            "prom:9090",
            "ftp://prom",
            "http://",
            "http://user:pw@prom:9090",
            "http://prom:99999",
            "http://prom:9090/?x=1",
            "http://pr om",
        ] {
            let err = url(bad).expect_err(bad);
            assert_eq!(err.var, "PERFSCOPE_PROMETHEUS_URL");
        }
    }
}
