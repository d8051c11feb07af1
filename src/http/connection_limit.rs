//! [`ConnectionLimit`]: at most `PERFSCOPE_MAX_HTTP_CONNECTIONS` open
//! connections; past the cap the next one waits.
//!
//! Each open connection costs a file descriptor, a task and hyper's
//! buffers, and the deadlines alone ([`crate::http::HeaderTimeout`],
//! [`crate::http::BodyDeadline`]) still let a flood hold thousands of them
//! for a deadline each. At the cap the acceptor stops calling `accept`
//! until a connection closes: new connections wait in the kernel's listen
//! backlog, which costs the agent nothing, and are served in turn as slots
//! free up (a slot held by a silent client frees within the head
//! deadline). Closing them instead would need an `accept` (a descriptor)
//! per refused attempt and would fail clients that a moment's wait would
//! have served. Open connections and waits are counted
//! (`perfscope_http_connections`, `perfscope_http_connection_waits_total`).

use std::io::{Error, Result as IoResult};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What the cap reports (a metric set, defined with the HTTP metrics).
pub use crate::metrics::http::ConnectionGauges;

/// Wraps an acceptor with a cap on open connections; see the module docs.
pub struct ConnectionLimit<A> {
    inner: A,
    slots: Arc<Semaphore>,
    gauges: ConnectionGauges,
}

impl<A> ConnectionLimit<A> {
    /// At most `max` connections open at once.
    pub fn new(inner: A, max: usize, gauges: ConnectionGauges) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            gauges,
        }
    }
}

impl<A: Acceptor> Acceptor for ConnectionLimit<A> {
    type Io = Counted<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.gauges.waits.inc();
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(Error::other)?
            }
        };
        let (io, local, remote, scheme) = self.inner.accept().await?;
        self.gauges.open.inc();
        let io = Counted {
            io,
            _slot: permit,
            open: self.gauges.open.clone(),
        };
        Ok((io, local, remote, scheme))
    }
}

/// A connection holding its slot until it is dropped.
pub struct Counted<T> {
    io: T,
    _slot: OwnedSemaphorePermit,
    open: Gauge,
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<IoResult<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<IoResult<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<IoResult<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
