//! Connections the handler can cut.
//!
//! HTTP servers always answer something, even when a handler fails; a client only
//! sees a real dropped connection if the socket itself goes away. Each accepted
//! stream therefore carries a kill switch that the handler reaches through
//! `ConnectInfo`; once thrown, every read and write fails and hyper drops the
//! connection without writing the response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub(super) struct KillableListener(pub(super) TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (KillableStream, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        // Streamed words are tiny writes; Nagle would hold them back and skew timings.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!("mock server: TCP_NODELAY failed: {err}");
        }
        let stream = KillableStream {
            inner: stream,
            killed: Arc::new(AtomicBool::new(false)),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

pub(super) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    /// Fails once killed. A zero linger makes the close a reset, so the client
    /// cannot mistake it for a clean end of a (short) response.
    fn check(&self) -> io::Result<()> {
        if !self.killed.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Err(err) = self.inner.set_zero_linger() {
            tracing::debug!("mock server: SO_LINGER failed: {err}");
        }
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "mock fault: connection closed on purpose",
        ))
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The handler's end of a connection's kill switch.
#[derive(Clone)]
pub(super) struct Connection(Arc<AtomicBool>);

impl Connection {
    /// Makes the connection fail at its next read or write, which is the write
    /// of the handler's response: the client gets no response at all.
    pub(super) fn kill(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        Connection(Arc::clone(&stream.io().killed))
    }
}
