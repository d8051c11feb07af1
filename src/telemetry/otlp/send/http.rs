//! OTLP over HTTP/protobuf: a POST of the encoded request to the traces
//! URL (`content-type: application/x-protobuf`, `content-encoding: gzip`
//! when compressed), on a kept-alive connection (reqwest's async client on
//! the export thread's runtime, TLS by rustls as before).

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::{Failure, MAX_ANSWER_BYTES, Retry, USER_AGENT, retry_after};
use crate::config::{OtlpCompression, OtlpConfig};

pub(in crate::telemetry::otlp) struct HttpSender {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    gzip: bool,
}

impl HttpSender {
    pub(super) fn new(config: &OtlpConfig) -> Result<Self, String> {
        let url = reqwest::Url::parse(&config.endpoint)
            .map_err(|_| "the OTLP traces endpoint is not a URL".to_owned())?;
        let client = reqwest::Client::builder()
            .timeout(config.export_timeout)
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            // A redirect would re-send the credential headers (and the
            // spans) to wherever it points: refused, as a failed export.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| error.to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        let gzip = config.compression == OtlpCompression::Gzip;
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        for (position, (name, value)) in config.headers.iter().enumerate() {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            ) {
                (Ok(name), Ok(mut value)) => {
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
                // Neither name nor value is logged: a malformed pair may
                // hold the secret in what was read as its name.
                _ => tracing::warn!(
                    pair = position + 1,
                    "an OTEL_EXPORTER_OTLP_HEADERS pair is not a valid HTTP header: it is not sent"
                ),
            }
        }
        Ok(Self {
            client,
            url,
            headers,
            gzip,
        })
    }

    /// The body every attempt sends: `body`, gzipped when configured.
    pub(super) fn prepare(&self, body: &[u8]) -> Bytes {
        if !self.gzip {
            return Bytes::copy_from_slice(body);
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4 + 64),
            flate2::Compression::default(),
        );
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(body);
        Bytes::from(encoder.finish().unwrap_or_default())
    }

    /// One POST, within `timeout`.
    pub(super) async fn post(&self, body: Bytes, timeout: Duration) -> Result<(), Failure> {
        let answer = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        let mut response = match answer {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                return Err(Failure::new("the OTLP export timed out", Retry::Backoff));
            }
            Err(_) => {
                return Err(Failure::new(
                    "the OTLP export failed: network error",
                    Retry::Backoff,
                ));
            }
        };
        let status = response.status().as_u16();
        let asked = retry_after(
            response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()),
        );
        // Read the answer (bounded) so the connection is kept.
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > MAX_ANSWER_BYTES {
                break;
            }
        }
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry = match (status, asked) {
            (429 | 503, Some(after)) => Retry::After(after),
            (429 | 502 | 503 | 504, _) => Retry::Backoff,
            _ => Retry::No,
        };
        Err(Failure::new(
            format!("the OTLP collector answered HTTP {status}"),
            retry,
        ))
    }
}
