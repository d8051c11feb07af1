//! [`Tls`]: the agent's TLS acceptor, offering only HTTP/1.1 by ALPN.
//!
//! Poem's rustls listener hard-codes ALPN `h2, http/1.1`, so every browser
//! and curl would pick HTTP/2, which the agent does not serve (see
//! [`crate::http::HeaderTimeout`]: its deadlines cover HTTP/1.1 only). This
//! one is the same rustls server with `http/1.1` as the only protocol. The
//! handshake runs lazily in the connection's first read or write, on the
//! connection's own task, so a client stalling its handshake holds up no
//! one else and is cut by the head deadline like a silent client.

use std::future::Future;
use std::io::{Error, ErrorKind, Result as IoResult};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The one application protocol offered.
const HTTP_1_1: &[u8] = b"http/1.1";

/// A server configuration from a PEM certificate chain and private key,
/// offering only HTTP/1.1; the error says what is wrong with which.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("no certificate chain in the PEM file ({e})"))?;
    if chain.is_empty() {
        return Err("no certificate in the PEM file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("no private key in the PEM file ({e})"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not make a server ({e})"))?;
    config.alpn_protocols = vec![HTTP_1_1.to_vec()];
    Ok(config)
}

/// Wraps a plain acceptor with TLS; see the module docs.
pub struct Tls<A> {
    inner: A,
    acceptor: TlsAcceptor,
}

impl<A> Tls<A> {
    /// TLS over `inner` with `config`.
    pub fn new(inner: A, config: ServerConfig) -> Self {
        Self {
            inner,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }
}

impl<A: Acceptor> Acceptor for Tls<A> {
    type Io = Handshake<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, _) = self.inner.accept().await?;
        let io = Handshake::Pending(Box::new(self.acceptor.accept(io)));
        Ok((io, local, remote, Scheme::HTTPS))
    }
}

/// A TLS connection, handshaking until its first use completes it.
pub enum Handshake<T> {
    /// The handshake is under way.
    Pending(Box<tokio_rustls::Accept<T>>),
    /// The handshake is done.
    Ready(Box<TlsStream<T>>),
    /// The handshake failed.
    Failed,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Handshake<T> {
    /// Drives the handshake; the stream once it is done.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<IoResult<&mut TlsStream<T>>> {
        if let Self::Pending(accept) = self {
            match ready!(Pin::new(accept.as_mut()).poll(cx)) {
                Ok(stream) => *self = Self::Ready(Box::new(stream)),
                Err(error) => {
                    *self = Self::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        match self {
            Self::Ready(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(Error::new(
                ErrorKind::InvalidData,
                "the TLS handshake failed",
            ))),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Handshake<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<IoResult<()>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Handshake<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<IoResult<usize>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        match self.get_mut() {
            Handshake::Ready(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            // Nothing was established: there is nothing to close politely.
            _ => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let error = server_config(b"not pem", b"not pem").err();
        assert!(
            error.as_deref().is_some_and(|e| e.contains("certificate")),
            "{error:?}"
        );
    }
}
