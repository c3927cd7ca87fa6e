//! [`AsyncBackupWriter`]: the synchronous [`BackupWriter`] over an [`Output`] that polls the
//! asynchronous writer straight from the buffers the synchronous writer seals segments in, so
//! that the stream is copied no more than by the synchronous writer.

use std::fmt;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use tokio::io::AsyncWrite;

use crate::key::DataKey;
use crate::stream::header::Header;
use crate::stream::{BackupWriter, Extension, StreamConfig, StreamError};

/// The asynchronous output as the synchronous writer writes to it. Inside a poll of the
/// [`AsyncBackupWriter`], `write` polls `inner` with that poll's waker and passes on what it
/// took; what `inner` does not take at once (it returned `Pending`) is kept in `spill`, and
/// written out before anything else by the next poll. Before the first poll (the header, written
/// by the constructor) everything goes to `spill`: `inner` is only ever polled from a poll.
pub(super) struct Output<W> {
    pub(super) inner: W,
    /// The waker of the poll in progress (or of the last one).
    waker: Option<Waker>,
    /// Ciphertext `inner` has not taken yet: `spill[start..]`.
    spill: Vec<u8>,
    start: usize,
}

impl<W: AsyncWrite + Unpin> Output<W> {
    pub(super) fn new(inner: W) -> Self {
        Output {
            inner,
            waker: None,
            spill: Vec::new(),
            start: 0,
        }
    }

    /// Makes the synchronous writer's writes poll `inner` on behalf of the task of `cx`.
    fn enter(&mut self, cx: &Context<'_>) {
        match &self.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
    }

    /// Writes out the spilled ciphertext.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.start < self.spill.len() {
            let pending = &self.spill[self.start..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.start += n;
        }
        self.spill.clear();
        self.start = 0;
        Poll::Ready(Ok(()))
    }

    #[cfg(test)]
    pub(super) fn spill_capacity(&self) -> usize {
        self.spill.capacity()
    }
}

/// The synchronous writer writes its ciphertext here.
impl<W: AsyncWrite + Unpin> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let (true, Some(waker)) = (self.spill.is_empty(), &self.waker) {
            let mut cx = Context::from_waker(waker);
            if let Poll::Ready(result) = Pin::new(&mut self.inner).poll_write(&mut cx, buf) {
                return result;
            }
        }
        self.spill.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// The asynchronous side flushes `inner`, once the spilled ciphertext is written out.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where an [`AsyncBackupWriter`] stands.
#[derive(Clone, Copy, Debug)]
enum Writing {
    Open,
    /// The last segment is sealed (its ciphertext may not all be written yet).
    Finished,
    /// Finishing failed: the output is an incomplete stream.
    Failed,
}

/// Encrypts a backup into any tokio [`AsyncWrite`]: the bytes of a [`BackupWriter`] with the
/// same key, configuration and extensions, and the same errors (inside the `io::Error`s, as
/// [`StreamError::from_io`] finds them).
///
/// Each `poll_write` takes at most one segment of plaintext, after the ciphertext of the
/// previous ones has been written out: memory stays at a few segments whatever the stream's
/// size, and a write future dropped while pending took nothing. Sealed segments are written to
/// the inner writer from the buffers they were sealed in; only what it does not take at once
/// (`Pending`) is copied aside, to be written first by the next poll. With
/// [`StreamConfig::threads`] `n > 1`, sealing runs on the writer's own threads as in the
/// synchronous writer (the runtime's thread waits at most for one segment being sealed);
/// with one thread, the runtime's thread seals one segment per `poll_write`.
///
/// **Finish the stream**: [`finish`](Self::finish) (which hands back the inner writer) or
/// [`shutdown`](tokio::io::AsyncWriteExt::shutdown) (which also shuts the inner writer down)
/// writes the last segment. A stream whose writer was dropped before is refused by every reader
/// as [`StreamError::Truncated`]. The inner writer is first polled by the first write, flush or
/// finish (the header waits until then).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use strongbox::DataKey;
/// use strongbox::stream::{AsyncBackupWriter, AsyncRestoreReader};
///
/// let key = DataKey::generate()?;
/// let mut writer = AsyncBackupWriter::new(Vec::new(), &key)?;
/// writer.write_all(b"the database").await?;
/// let backup: Vec<u8> = writer.finish().await?;
///
/// let mut reader = AsyncRestoreReader::new(&backup[..], &key).await?;
/// let mut restored = Vec::new();
/// reader.read_to_end(&mut restored).await?;
/// assert_eq!(restored, b"the database");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).map_err(|e| e.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncBackupWriter<W: AsyncWrite + Unpin> {
    pub(super) sync: BackupWriter<Output<W>>,
    state: Writing,
    segment_size: usize,
}

impl<W: AsyncWrite + Unpin> AsyncBackupWriter<W> {
    /// Starts an AES-256-GCM stream with the default segment size, encrypted with `key`. The
    /// header is written to `inner` by the first write, flush or finish.
    pub fn new(inner: W, key: &DataKey) -> Result<Self, StreamError> {
        BackupWriter::new(Output::new(inner), key).map(Self::around)
    }

    /// As [`BackupWriter::with_config`].
    pub fn with_config(
        inner: W,
        key: &DataKey,
        config: &StreamConfig,
        extensions: Vec<Extension>,
    ) -> Result<Self, StreamError> {
        BackupWriter::with_config(Output::new(inner), key, config, extensions).map(Self::around)
    }

    /// As [`BackupWriter::unencrypted`]: an **integrity-only** stream, in clear.
    pub fn unencrypted(
        inner: W,
        config: &StreamConfig,
        extensions: Vec<Extension>,
    ) -> Result<Self, StreamError> {
        BackupWriter::unencrypted(Output::new(inner), config, extensions).map(Self::around)
    }

    pub(super) fn around(sync: BackupWriter<Output<W>>) -> Self {
        Self {
            segment_size: sync.header().segment_size(),
            state: Writing::Open,
            sync,
        }
    }

    /// The header of the stream.
    pub fn header(&self) -> &Header {
        self.sync.header()
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.sync.get_ref().inner
    }

    /// Seals and writes the last segment, flushes the inner writer and returns it (without
    /// shutting it down).
    pub async fn finish(mut self) -> io::Result<W> {
        std::future::poll_fn(|cx| self.poll_finish(cx)).await?;
        Ok(self.sync.into_inner().inner)
    }

    /// Makes the synchronous writer write on behalf of `cx` and writes out what it spilled.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let output = self.sync.get_mut();
        output.enter(cx);
        output.poll_drain(cx)
    }

    /// Writes the last segment and flushes the inner writer.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_ready(cx))?;
        match self.state {
            Writing::Open => {
                self.state = Writing::Failed;
                self.sync.seal_last()?;
                self.state = Writing::Finished;
            }
            Writing::Finished => {}
            Writing::Failed => return Poll::Ready(Err(StreamError::Poisoned.into())),
        }
        ready!(self.poll_ready(cx))?;
        Pin::new(&mut self.sync.get_mut().inner).poll_flush(cx)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncBackupWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        let Writing::Open = this.state else {
            return Poll::Ready(Err(StreamError::Poisoned.into()));
        };
        let n = data.len().min(this.segment_size);
        this.sync.write_all(&data[..n])?;
        Poll::Ready(Ok(n))
    }

    /// Writes every segment sealed so far and flushes the inner writer; buffered plaintext
    /// stays buffered, as with [`BackupWriter`]'s `flush`.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_ready(cx))?;
        if let Writing::Open = this.state {
            this.sync.flush()?;
            ready!(this.poll_ready(cx))?;
        }
        Pin::new(&mut this.sync.get_mut().inner).poll_flush(cx)
    }

    /// Finishes the stream (as [`finish`](AsyncBackupWriter::finish)) and shuts the inner
    /// writer down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_finish(cx))?;
        Pin::new(&mut this.sync.get_mut().inner).poll_shutdown(cx)
    }
}

impl<W: AsyncWrite + Unpin> fmt::Debug for AsyncBackupWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncBackupWriter")
            .field("header", self.header())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
