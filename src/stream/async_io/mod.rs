//! [`AsyncBackupWriter`] and [`AsyncRestoreReader`]: the stream over tokio's [`AsyncWrite`] and
//! [`AsyncRead`] (feature `tokio`).
//!
//! Each drives the synchronous type: the bytes, the segment rules, the threads and the errors
//! are the synchronous types', not a second implementation of them. The writer's ciphertext
//! goes through an in-memory buffer that holds at most the ciphertext of one `poll_write` (one
//! segment, or the few segments its threads had sealed); the reader polls its input straight
//! into the buffer the synchronous reader reads into (`reader.rs`). Neither blocks the runtime
//! on I/O.

use std::fmt;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

use super::header::Header;
use super::{BackupWriter, Extension, StreamConfig, StreamError};
use crate::key::DataKey;

mod reader;

pub use reader::AsyncRestoreReader;

/// The ciphertext of the synchronous writer on its way out: the bytes not yet written to the
/// inner writer are `data[start..]`.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Outgoing>>);

#[derive(Default)]
struct Outgoing {
    data: Vec<u8>,
    start: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Outgoing> {
        // The lock is never held across a call that can panic; recover the data anyway.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The synchronous writer writes its ciphertext here.
impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where an [`AsyncBackupWriter`] stands.
enum Writing {
    Open(Box<BackupWriter<Shared>>),
    /// The last segment is in the buffer (it may not all be written yet).
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
/// size, and a write future dropped while pending took nothing. With
/// [`StreamConfig::threads`] `n > 1`, sealing runs on the writer's own threads as in the
/// synchronous writer (the runtime's thread waits at most for one segment being sealed);
/// with one thread, the runtime's thread seals one segment per `poll_write`.
///
/// **Finish the stream**: [`finish`](Self::finish) (which hands back the inner writer) or
/// [`shutdown`](tokio::io::AsyncWriteExt::shutdown) (which also shuts the inner writer down)
/// writes the last segment. A stream whose writer was dropped before is refused by every reader
/// as [`StreamError::Truncated`].
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
pub struct AsyncBackupWriter<W> {
    inner: W,
    state: Writing,
    header: Header,
    /// The ciphertext not yet written to `inner`.
    out: Shared,
    segment_size: usize,
}

impl<W: AsyncWrite + Unpin> AsyncBackupWriter<W> {
    /// Starts an AES-256-GCM stream with the default segment size, encrypted with `key`. The
    /// header is written to `inner` by the first write, flush or finish.
    pub fn new(inner: W, key: &DataKey) -> Result<Self, StreamError> {
        Self::with_config(inner, key, &StreamConfig::default(), Vec::new())
    }

    /// As [`BackupWriter::with_config`].
    pub fn with_config(
        inner: W,
        key: &DataKey,
        config: &StreamConfig,
        extensions: Vec<Extension>,
    ) -> Result<Self, StreamError> {
        let out = Shared::default();
        let sync = BackupWriter::with_config(out.clone(), key, config, extensions)?;
        Ok(Self::around(inner, sync, out))
    }

    /// As [`BackupWriter::unencrypted`]: an **integrity-only** stream, in clear.
    pub fn unencrypted(
        inner: W,
        config: &StreamConfig,
        extensions: Vec<Extension>,
    ) -> Result<Self, StreamError> {
        let out = Shared::default();
        let sync = BackupWriter::unencrypted(out.clone(), config, extensions)?;
        Ok(Self::around(inner, sync, out))
    }

    fn around(inner: W, sync: BackupWriter<Shared>, out: Shared) -> Self {
        Self {
            inner,
            header: sync.header().clone(),
            segment_size: sync.header().segment_size(),
            state: Writing::Open(Box::new(sync)),
            out,
        }
    }

    /// The header of the stream.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Seals and writes the last segment, flushes the inner writer and returns it (without
    /// shutting it down).
    pub async fn finish(mut self) -> io::Result<W> {
        std::future::poll_fn(|cx| self.poll_finish(cx)).await?;
        Ok(self.inner)
    }

    /// Writes out the buffered ciphertext.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut out = self.out.lock();
        while out.start < out.data.len() {
            let pending = &out.data[out.start..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            out.start += n;
        }
        out.data.clear();
        out.start = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes the last segment and flushes the inner writer.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        match std::mem::replace(&mut self.state, Writing::Failed) {
            Writing::Open(sync) => {
                sync.finish()?;
                self.state = Writing::Finished;
            }
            Writing::Finished => self.state = Writing::Finished,
            Writing::Failed => return Poll::Ready(Err(StreamError::Poisoned.into())),
        }
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncBackupWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let Writing::Open(sync) = &mut this.state else {
            return Poll::Ready(Err(StreamError::Poisoned.into()));
        };
        let n = data.len().min(this.segment_size);
        sync.write_all(&data[..n])?;
        Poll::Ready(Ok(n))
    }

    /// Writes every segment sealed so far and flushes the inner writer; buffered plaintext
    /// stays buffered, as with [`BackupWriter`]'s `flush`.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if let Writing::Open(sync) = &mut this.state {
            sync.flush()?;
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Finishes the stream (as [`finish`](AsyncBackupWriter::finish)) and shuts the inner
    /// writer down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_finish(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<W> fmt::Debug for AsyncBackupWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            Writing::Open(_) => "open",
            Writing::Finished => "finished",
            Writing::Failed => "failed",
        };
        f.debug_struct("AsyncBackupWriter")
            .field("header", &self.header)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
