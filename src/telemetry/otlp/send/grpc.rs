//! OTLP over gRPC: the encoded request as the message of
//! `opentelemetry.proto.collector.trace.v1.TraceService/Export`, through a
//! tonic channel with a codec that sends the bytes as they are (no
//! generated client, no message structs), gzip as `grpc-encoding`, the
//! headers as metadata. TLS for `https://` endpoints with the webpki roots.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::{Failure, Retry};
use crate::config::{OtlpCompression, OtlpConfig};

/// The method every batch is sent to.
const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub(in crate::telemetry::otlp) struct GrpcSender {
    client: tonic::client::Grpc<Channel>,
    metadata: MetadataMap,
}

impl GrpcSender {
    pub(super) fn new(config: &OtlpConfig) -> Result<Self, String> {
        let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|_| "the OTLP traces endpoint is not a URI".to_owned())?
            .timeout(config.export_timeout)
            .tcp_nodelay(true)
            .user_agent(super::USER_AGENT)
            .map_err(|error| error.to_string())?;
        if config.endpoint.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|error| error.to_string())?;
        }
        let mut client = tonic::client::Grpc::new(endpoint.connect_lazy());
        if config.compression == OtlpCompression::Gzip {
            client = client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        let mut metadata = MetadataMap::new();
        for (position, (name, value)) in config.headers.iter().enumerate() {
            match (
                name.to_ascii_lowercase().parse::<AsciiMetadataKey>(),
                AsciiMetadataValue::try_from(value.expose()),
            ) {
                (Ok(key), Ok(mut value)) => {
                    value.set_sensitive(true);
                    metadata.insert(key, value);
                }
                // Neither name nor value is logged: a malformed pair may
                // hold the secret in what was read as its name.
                _ => tracing::warn!(
                    pair = position + 1,
                    "an OTEL_EXPORTER_OTLP_HEADERS pair is not valid gRPC metadata: it is not sent"
                ),
            }
        }
        Ok(Self { client, metadata })
    }

    /// The message every attempt sends (tonic compresses it as it sends).
    pub(super) fn prepare(&self, body: &[u8]) -> Bytes {
        Bytes::copy_from_slice(body)
    }

    /// One call, within `timeout`.
    pub(super) async fn export(&mut self, body: Bytes, timeout: Duration) -> Result<(), Failure> {
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        request.set_timeout(timeout);
        let call = async {
            self.client
                .ready()
                .await
                .map_err(|_| tonic::Status::unavailable("the channel is not ready"))?;
            self.client
                .unary(
                    request,
                    http::uri::PathAndQuery::from_static(EXPORT),
                    RawCodec,
                )
                .await
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(Failure::new(
                format!("the OTLP collector answered {:?}", status.code()),
                retry(&status),
            )),
            Err(_) => Err(Failure::new("the OTLP export timed out", Retry::Backoff)),
        }
    }
}

/// Which gRPC answers are retried (opentelemetry-otlp's classification;
/// a server's retry delay in the status details is not read).
fn retry(status: &tonic::Status) -> Retry {
    use tonic::Code;
    match status.code() {
        Code::Unavailable
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss => Retry::Backoff,
        _ => Retry::No,
    }
}

/// Sends pre-encoded bytes; reads (and discards) the answer.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Self::Error> {
        // A partial success is taken as success: the answer is not decoded.
        src.advance(src.remaining());
        Ok(Some(()))
    }
}
