//! `PERFSCOPE_TRACE_URL`: where a trace id opens in the team's tracing
//! tool (Tempo, Jaeger, Honeycomb, Sentry, …), a URL template with
//! `{trace_id}` in it, e.g. `https://tempo.example/trace/{trace_id}`.
//!
//! The pages turn the trace ids of sampled statements into links with it.
//! It is checked here once so a page never renders a `javascript:` or
//! otherwise odd link: http(s) only, no credentials, no spaces, quotes or
//! angle brackets, `{trace_id}` present; and the id put in is always 32
//! hex digits ([`TraceUrl::link`]).

use super::ConfigError;

const VAR: &str = "PERFSCOPE_TRACE_URL";
/// The longest template, bytes.
const MAX_BYTES: usize = 512;
/// The placeholder a trace id replaces.
pub const PLACEHOLDER: &str = "{trace_id}";

/// A checked trace URL template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceUrl(String);

impl TraceUrl {
    /// Checks `value` (see the module docs).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let shown: String = value.chars().take(80).collect();
        let refuse = |expected: &str| ConfigError::new(VAR, &shown, expected);
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .ok_or_else(|| refuse("expected an http:// or https:// URL"))?;
        if value.len() > MAX_BYTES
            || value.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '`')
            })
        {
            return Err(refuse(
                "expected a URL without spaces, quotes or angle brackets, of at most 512 bytes",
            ));
        }
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.contains('@') || host.contains('{') {
            return Err(ConfigError::new(
                VAR,
                "***",
                "expected a host, without credentials",
            ));
        }
        if !value.contains(PLACEHOLDER) {
            return Err(refuse("expected {trace_id} where the trace id goes"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The link of `trace_id`, when it is a trace id (32 hex digits, as a
    /// `traceparent` carries it); anything else is never put in a link.
    pub fn link(&self, trace_id: &str) -> Option<String> {
        (trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.0.replace(PLACEHOLDER, trace_id))
    }

    /// The template as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `PERFSCOPE_TRACE_URL`, if set.
pub(super) fn trace_url(value: Option<&str>) -> Result<Option<TraceUrl>, ConfigError> {
    match value {
        None | Some("") => Ok(None),
        Some(value) => TraceUrl::parse(value).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_http_with_its_placeholder_and_links_only_trace_ids() {
        let url = TraceUrl::parse("https://tempo.example/trace/{trace_id}?orgId=1").expect("ok");
        assert_eq!(
            url.link("4bf92f3577b34da6a3ce929d0e0e4736").as_deref(),
            Some("https://tempo.example/trace/4bf92f3577b34da6a3ce929d0e0e4736?orgId=1")
        );
        assert_eq!(url.link("javascript:alert(1)"), None);
        assert_eq!(url.link("4bf92f3577b34da6a3ce929d0e0e473"), None);
        for bad in [
            "javascript:alert(1)//{trace_id}",
            "ftp://x/{trace_id}",
            "https://tempo.example/trace/",
            "https://user:pw@tempo.example/{trace_id}",
            "https://tempo.example/{trace_id} x",
            "https://tempo.example/\"{trace_id}",
            "https:///{trace_id}",
        ] {
            let error = TraceUrl::parse(bad).expect_err(bad);
            assert_eq!(error.var, VAR);
        }
        assert_eq!(trace_url(None).expect("unset"), None);
        assert_eq!(trace_url(Some("")).expect("empty"), None);
    }
}
