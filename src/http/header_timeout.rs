//! [`HeaderTimeout`]: an acceptor that closes a connection whose request
//! head (request line and headers) does not arrive in time.
//!
//! Poem sets no header-read timeout on hyper (hyper has one, but only with
//! a timer poem does not install), and its idle timeout counts any byte as
//! activity, so a slow-loris client sending one header byte a second would
//! hold a connection — and its memory — forever. This wrapper watches the
//! bytes read: from the first byte of a request head (or of the connection,
//! TLS handshake included) the head must end (`\r\n\r\n`) within the
//! timeout, or reads fail and hyper drops the connection. Once the head is
//! in, the body and the handler take what they take (an interim `100
//! Continue` does not end the request); the next head on a kept-alive
//! connection starts its clock with its first byte after a final response
//! has been written.
//!
//! HTTP/2 is refused here: a connection that opens with the HTTP/2 preface
//! (`PRI * HTTP/2.0`, cleartext prior knowledge, or over TLS, whose ALPN
//! offers only `http/1.1`: see [`crate::http::tls`]) gets a read error as
//! soon as the preface is in, and hyper drops it. Its frames have no head
//! this wrapper could time, poem gives hyper's HTTP/2 no timer, and its
//! idle timeout only starts a graceful GOAWAY that a silent client never
//! completes: 1,500 preface-only connections stayed open past both
//! deadlines. The agent's clients (Prometheus, browsers, curl, probes)
//! all speak HTTP/1.1, so one protocol with one set of deadlines holds by
//! construction where a second one would need its own.

use std::io::{Error, ErrorKind, Result as IoResult};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Wraps an acceptor; see the module docs.
pub struct HeaderTimeout<A> {
    inner: A,
    timeout: Duration,
}

impl<A> HeaderTimeout<A> {
    /// Heads must arrive within `timeout`.
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A: Acceptor> Acceptor for HeaderTimeout<A> {
    type Io = HeadDeadline<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((HeadDeadline::new(io, self.timeout), local, remote, scheme))
    }
}

/// Where a connection is in its request/response cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of a head (no clock running).
    Idle,
    /// Reading a head: `matched` bytes of `\r\n\r\n` seen so far.
    Head { matched: u8 },
    /// The head is in; the body (see [`crate::http::BodyDeadline`]) and
    /// the handler are not watched here.
    Served,
    /// The HTTP/2 preface came in: every read fails from now on.
    Refused,
}

const HEAD_END: &[u8; 4] = b"\r\n\r\n";
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// The connection's IO with a deadline on each request head.
pub struct HeadDeadline<T> {
    io: T,
    timeout: Duration,
    phase: Phase,
    /// The first bytes of the connection, to recognise HTTP/2.
    seen_at_start: usize,
    deadline: Pin<Box<Sleep>>,
}

impl<T> HeadDeadline<T> {
    fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            // The clock starts at accept: a connection that sends nothing
            // (or stalls its TLS handshake) is a slow head too.
            phase: Phase::Head { matched: 0 },
            seen_at_start: 0,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Follows the head through `bytes` just read.
    fn scan(&mut self, bytes: &[u8]) {
        if self.seen_at_start < H2_PREFACE.len() {
            let n = (H2_PREFACE.len() - self.seen_at_start).min(bytes.len());
            let expected = &H2_PREFACE[self.seen_at_start..self.seen_at_start + n];
            if bytes[..n] == *expected {
                self.seen_at_start += n;
                if self.seen_at_start == H2_PREFACE.len() {
                    self.phase = Phase::Refused;
                    return;
                }
            } else {
                self.seen_at_start = usize::MAX;
            }
        }
        for &byte in bytes {
            match self.phase {
                Phase::Refused | Phase::Served => return,
                Phase::Idle => {
                    self.phase = Phase::Head { matched: 0 };
                    let deadline = Instant::now() + self.timeout;
                    self.deadline.as_mut().reset(deadline);
                    self.advance(byte);
                }
                Phase::Head { .. } => self.advance(byte),
            }
        }
    }

    /// A response is going out: the next bytes read start a new head —
    /// unless it is an interim `1xx` (`100 Continue`), after which the
    /// client sends the body of the same request.
    fn wrote(&mut self, bytes: &[u8]) {
        let interim = bytes.starts_with(b"HTTP/1.1 1") || bytes.starts_with(b"HTTP/1.0 1");
        if self.phase == Phase::Served && !interim {
            self.phase = Phase::Idle;
        }
    }

    fn advance(&mut self, byte: u8) {
        let Phase::Head { matched } = self.phase else {
            return;
        };
        let matched = if byte == HEAD_END[matched as usize] {
            matched + 1
        } else if byte == HEAD_END[0] {
            1
        } else {
            0
        };
        self.phase = if matched as usize == HEAD_END.len() {
            Phase::Served
        } else {
            Phase::Head { matched }
        };
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<IoResult<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.scan(&buf.filled()[before..]);
                if this.phase == Phase::Refused {
                    // Hand hyper none of the preface: it must not switch
                    // to HTTP/2 before the error ends the connection.
                    buf.set_filled(before);
                    return Poll::Ready(Err(Error::new(
                        ErrorKind::Unsupported,
                        "HTTP/2 is not served; use HTTP/1.1",
                    )));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                if matches!(this.phase, Phase::Head { .. })
                    && this.deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(Error::new(
                        ErrorKind::TimedOut,
                        "the request head did not arrive in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<IoResult<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote(buf);
        }
        written
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
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            this.wrote(first);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline() -> HeadDeadline<()> {
        HeadDeadline {
            io: (),
            timeout: Duration::from_secs(1),
            phase: Phase::Head { matched: 0 },
            seen_at_start: 0,
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(1))),
        }
    }

    #[tokio::test]
    async fn a_head_ends_at_the_blank_line_even_split_across_reads() {
        let mut d = deadline();
        d.scan(b"GET / HTTP/1.1\r\nHost: x\r");
        assert_eq!(d.phase, Phase::Head { matched: 1 });
        d.scan(b"\n\r");
        assert_eq!(d.phase, Phase::Head { matched: 3 });
        d.scan(b"\nbody bytes \r\n\r\n");
        assert_eq!(d.phase, Phase::Served);
    }

    #[tokio::test]
    async fn the_http2_preface_is_refused_even_split_across_reads() {
        let mut d = deadline();
        d.scan(b"PRI * HTTP");
        assert_eq!(d.phase, Phase::Head { matched: 0 });
        d.scan(b"/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(d.phase, Phase::Refused);
        let mut d = deadline();
        d.scan(b"PRIZE /x HTTP/1.1\r\n");
        assert_eq!(d.phase, Phase::Head { matched: 2 });
    }

    #[tokio::test]
    async fn a_100_continue_keeps_the_body_unwatched_and_a_final_answer_ends_it() {
        let mut d = deadline();
        d.scan(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(d.phase, Phase::Served);
        d.wrote(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(d.phase, Phase::Served);
        d.scan(b"{\"slow\": \"body\"}");
        assert_eq!(d.phase, Phase::Served);
        d.wrote(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert_eq!(d.phase, Phase::Idle);
    }

    #[tokio::test]
    async fn a_new_head_starts_from_idle() {
        let mut d = deadline();
        d.phase = Phase::Idle;
        d.scan(b"G");
        assert_eq!(d.phase, Phase::Head { matched: 0 });
    }
}
