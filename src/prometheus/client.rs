//! A small client of Prometheus' HTTP API (`/api/v1/query` and
//! `/api/v1/query_range`), written for an upstream that may be slow, down,
//! or answering something else entirely: one deadline per call, no
//! redirects, the body read up to a cap, at most [`MAX_SERIES`] series and
//! [`MAX_POINTS`] points each, and every label kept as short plain text
//! (the caller escapes it where it shows it and never turns it into a
//! metric label of its own). Its errors say what went wrong in a sentence
//! fit for a page, without echoing more than a short, cleaned excerpt of
//! what the server said.

use std::time::Duration;

use serde_json::Value;

use crate::history::TimeRange;

/// Longest a call may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// Largest answer read, bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most series of one answer.
pub const MAX_SERIES: usize = 2_000;
/// Most points of one series.
pub const MAX_POINTS: usize = 2_000;
/// Most labels kept per series.
const MAX_LABELS: usize = 16;
/// Longest label name or value kept, characters.
pub const MAX_LABEL_CHARS: usize = 200;
/// Longest excerpt of the server's own error shown.
const MAX_ERROR_CHARS: usize = 160;

/// Why Prometheus gave no usable answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrometheusError {
    /// No connection, or no answer within [`TIMEOUT`].
    #[error("no answer: {0}")]
    Unreachable(String),
    /// An HTTP status other than 200 without Prometheus' error body.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The answer was over [`MAX_BODY_BYTES`].
    #[error("an answer over {} MiB", MAX_BODY_BYTES / (1024 * 1024))]
    TooLarge,
    /// More than [`MAX_SERIES`] series or [`MAX_POINTS`] points.
    #[error("more than {MAX_SERIES} series or {MAX_POINTS} points per series")]
    TooManySeries,
    /// Not Prometheus' JSON.
    #[error("an answer that is not Prometheus' API ({0})")]
    Garbage(&'static str),
    /// Prometheus refused the query (its own words, cleaned and cut).
    #[error("the query was refused: {0}")]
    Refused(String),
}

/// One series of an answer: its labels and points (Unix seconds, value;
/// `NaN` and infinities as Prometheus sent them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Label names and values, cut to [`MAX_LABEL_CHARS`].
    pub labels: Vec<(String, String)>,
    /// Points, oldest first (one for an instant query).
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of an instant query's answer.
    pub fn value(&self) -> Option<f64> {
        self.points.last().map(|(_, v)| *v)
    }
}

/// A Prometheus server's query API.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    query: reqwest::Url,
    query_range: reqwest::Url,
}

impl Client {
    /// A client of the server at `base` (ending in `/`; the API is under
    /// `api/v1/` of it).
    pub fn new(base: &str) -> Result<Self, PrometheusError> {
        let base = reqwest::Url::parse(base).map_err(|_| PrometheusError::Garbage("a bad URL"))?;
        let join = |path: &str| {
            base.join(path)
                .map_err(|_| PrometheusError::Garbage("a bad URL"))
        };
        let http = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("perfscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PrometheusError::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            query: join("api/v1/query")?,
            query_range: join("api/v1/query_range")?,
        })
    }

    /// `promql` evaluated at `at` (Unix seconds): an instant vector.
    pub async fn query(&self, promql: &str, at: f64) -> Result<Vec<Series>, PrometheusError> {
        let mut url = self.query.clone();
        url.query_pairs_mut()
            .append_pair("query", promql)
            .append_pair("time", &format!("{at:.3}"));
        self.get(url, "vector").await
    }

    /// `promql` over `range`: a range vector, one point per step.
    pub async fn query_range(
        &self,
        promql: &str,
        range: &TimeRange,
    ) -> Result<Vec<Series>, PrometheusError> {
        let mut url = self.query_range.clone();
        url.query_pairs_mut()
            .append_pair("query", promql)
            .append_pair("start", &format!("{:.3}", range.start))
            .append_pair("end", &format!("{:.3}", range.end))
            .append_pair("step", &format!("{}s", range.step.as_secs().max(1)));
        self.get(url, "matrix").await
    }

    async fn get(&self, url: reqwest::Url, kind: &str) -> Result<Vec<Series>, PrometheusError> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| PrometheusError::Unreachable(unreachable_reason(&e)))?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY_BYTES as u64)
        {
            return Err(PrometheusError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| PrometheusError::Unreachable(unreachable_reason(&e)))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(PrometheusError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        parse(status, &body, kind)
    }
}

/// A short reason for a failed call, without the URL (reqwest's messages
/// carry it, and it is the operator's to show, not the error's).
fn unreachable_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if error.is_connect() {
        "connection refused or unreachable".to_owned()
    } else if error.is_redirect() {
        "a redirect, which is not followed".to_owned()
    } else {
        "the connection failed".to_owned()
    }
}

/// Untrusted text cut to `max` characters, control characters dropped.
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// An answer of the API: `status` 200 with `{"status":"success","data":
/// {"resultType": kind, "result": [...]}}`, or Prometheus' error body.
pub fn parse(status: u16, body: &[u8], kind: &str) -> Result<Vec<Series>, PrometheusError> {
    let json: Value = match serde_json::from_slice(body) {
        Ok(json) => json,
        Err(_) if status != 200 => return Err(PrometheusError::Status(status)),
        Err(_) => return Err(PrometheusError::Garbage("not JSON")),
    };
    match json.get("status").and_then(Value::as_str) {
        Some("success") if status == 200 => {}
        Some("error") => {
            let said = json.get("error").and_then(Value::as_str).unwrap_or("");
            return Err(PrometheusError::Refused(clean(said, MAX_ERROR_CHARS)));
        }
        _ if status != 200 => return Err(PrometheusError::Status(status)),
        _ => return Err(PrometheusError::Garbage("no success status")),
    }
    let data = json
        .get("data")
        .ok_or(PrometheusError::Garbage("no data"))?;
    if data.get("resultType").and_then(Value::as_str) != Some(kind) {
        return Err(PrometheusError::Garbage("an unexpected result type"));
    }
    let result = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or(PrometheusError::Garbage("no result list"))?;
    if result.len() > MAX_SERIES {
        return Err(PrometheusError::TooManySeries);
    }
    result.iter().map(series).collect()
}

/// One element of `result`.
fn series(item: &Value) -> Result<Series, PrometheusError> {
    let labels = item
        .get("metric")
        .and_then(Value::as_object)
        .ok_or(PrometheusError::Garbage("a series without labels"))?
        .iter()
        .filter_map(|(name, value)| {
            Some((
                clean(name, MAX_LABEL_CHARS),
                clean(value.as_str()?, MAX_LABEL_CHARS),
            ))
        })
        .take(MAX_LABELS)
        .collect();
    let points = if let Some(value) = item.get("value") {
        vec![point(value)?]
    } else {
        let values = item
            .get("values")
            .and_then(Value::as_array)
            .ok_or(PrometheusError::Garbage("a series without values"))?;
        if values.len() > MAX_POINTS {
            return Err(PrometheusError::TooManySeries);
        }
        values.iter().map(point).collect::<Result<_, _>>()?
    };
    Ok(Series { labels, points })
}

/// `[1700000000.123, "0.25"]`.
fn point(value: &Value) -> Result<(f64, f64), PrometheusError> {
    let bad = PrometheusError::Garbage("a malformed sample");
    let pair = value
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or(bad.clone())?;
    let at = pair[0].as_f64().ok_or(bad.clone())?;
    let sample = pair[1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or(bad)?;
    Ok((at, sample))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_answer_parses() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"method":"GET","route":"/items/:id"},"value":[1700000000.5,"12.5"]},
            {"metric":{"route":"<script>"},"value":[1700000000.5,"NaN"]}]}}"#;
        let series = parse(200, body, "vector").expect("parses");
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].label("route"), Some("/items/:id"));
        assert_eq!(series[0].value(), Some(12.5));
        assert!(series[1].value().is_some_and(f64::is_nan));
        assert_eq!(series[1].label("route"), Some("<script>"));
    }

    #[test]
    fn a_matrix_answer_parses() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"route":"/a"},"values":[[1,"0.1"],[2,"+Inf"]]}]}}"#;
        let series = parse(200, body, "matrix").expect("parses");
        assert_eq!(series[0].points[0], (1.0, 0.1));
        assert_eq!(series[0].points[1].1, f64::INFINITY);
    }

    #[test]
    fn garbage_and_errors_are_named() {
        assert_eq!(
            parse(200, b"<html>hello</html>", "vector"),
            Err(PrometheusError::Garbage("not JSON"))
        );
        assert_eq!(
            parse(502, b"Bad Gateway", "vector"),
            Err(PrometheusError::Status(502))
        );
        assert_eq!(
            parse(
                200,
                br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
                "vector"
            ),
            Err(PrometheusError::Garbage("an unexpected result type"))
        );
        assert_eq!(
            parse(200, br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}"#, "vector"),
            Err(PrometheusError::Garbage("a malformed sample"))
        );
        let long = format!(
            r#"{{"status":"error","errorType":"bad_data","error":"parse error\n{}"}}"#,
            "x".repeat(10_000)
        );
        let Err(PrometheusError::Refused(said)) = parse(400, long.as_bytes(), "vector") else {
            panic!("an error body is a refusal");
        };
        assert!(said.starts_with("parse error"), "{said}");
        assert_eq!(said.chars().count(), MAX_ERROR_CHARS);
        assert!(!said.contains('\n'));
    }

    #[test]
    fn series_and_labels_are_capped() {
        let many: Vec<String> = (0..=MAX_SERIES)
            .map(|i| format!(r#"{{"metric":{{"route":"/{i}"}},"value":[1,"1"]}}"#))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            many.join(",")
        );
        assert_eq!(
            parse(200, body.as_bytes(), "vector"),
            Err(PrometheusError::TooManySeries)
        );
        let long = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"route":"{}"}},"value":[1,"1"]}}]}}}}"#,
            "r".repeat(5_000)
        );
        let series = parse(200, long.as_bytes(), "vector").expect("parses");
        assert_eq!(
            series[0].label("route").map(|r| r.chars().count()),
            Some(MAX_LABEL_CHARS)
        );
    }
}
