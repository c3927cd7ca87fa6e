//! [`AsyncBackupWriter`] and [`AsyncRestoreReader`]: the stream over tokio's [`AsyncWrite`] and
//! [`AsyncRead`] (feature `tokio`).
//!
//! Each drives the synchronous type over an in-memory buffer that the asynchronous side fills or
//! empties: the bytes, the segment rules, the threads and the errors are the synchronous
//! types', not a second implementation of them. The writer's buffer holds at most the ciphertext
//! of one `poll_write` (one segment, or the few segments its threads had sealed); the reader's
//! holds at most one read of the input ([`AsyncRestoreReader::CHUNK`] bytes, or one ciphertext
//! segment if larger). Neither blocks the runtime on I/O.

use std::fmt;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};

use super::header::{FIXED_LEN, Header, MAC_LEN, area_len};
use super::{BackupWriter, Extension, RestoreReader, StreamConfig, StreamError, TAG_LEN};
use crate::key::DataKey;

/// Bytes handed between a synchronous stream type and the asynchronous side: the writer's
/// ciphertext on its way out, or the reader's input on its way in.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Bytes>>);

#[derive(Default)]
struct Bytes {
    /// The bytes not yet taken are `data[start..end]`. The reader's buffer keeps its length
    /// (one chunk, allocated once); the writer's grows and is emptied.
    data: Vec<u8>,
    start: usize,
    end: usize,
    /// The input ended (reader side).
    ended: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Bytes> {
        // The lock is never held across a call that can panic; recover the data anyway.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer side: the synchronous writer writes its ciphertext here.
impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = self.lock();
        bytes.data.extend_from_slice(buf);
        bytes.end = bytes.data.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reader side: the synchronous reader reads the input from here. Empty before the input
/// ended, it fails with [`io::ErrorKind::WouldBlock`], which the reader treats as any I/O error:
/// it keeps what it read and may be called again.
impl Read for Shared {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut bytes = self.lock();
        let (start, end) = (bytes.start, bytes.end);
        if start == end {
            return if bytes.ended {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = (end - start).min(out.len());
        out[..n].copy_from_slice(&bytes.data[start..start + n]);
        bytes.start += n;
        Ok(n)
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
        let mut bytes = self.out.lock();
        while bytes.start < bytes.end {
            let pending = &bytes.data[bytes.start..bytes.end];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            bytes.start += n;
        }
        bytes.data.clear();
        (bytes.start, bytes.end) = (0, 0);
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

/// Decrypts a backup from any tokio [`AsyncRead`]: what a [`RestoreReader`] returns for the
/// same bytes, with the same errors (inside the `io::Error`s, as [`StreamError::from_io`] finds
/// them), and the same guarantee: no plaintext of a segment is returned before its tag was
/// verified.
///
/// A read future dropped while pending returned nothing and loses nothing: the input it read
/// stays buffered for the next read. With [`with_threads`](Self::with_threads) `n > 1`, segments
/// are opened on the reader's own threads as in the synchronous reader; with one thread, the
/// runtime's thread opens one segment per read.
pub struct AsyncRestoreReader<R> {
    inner: R,
    sync: RestoreReader<Shared>,
    /// The input read but not yet taken by `sync`.
    input: Shared,
    chunk: usize,
}

impl<R: AsyncRead + Unpin> AsyncRestoreReader<R> {
    /// The most bytes of input read at a time (or one ciphertext segment, if larger).
    pub const CHUNK: usize = 256 << 10;

    /// Reads the header of an encrypted stream and authenticates it with `key`, as
    /// [`RestoreReader::new`].
    pub async fn new(mut inner: R, key: &DataKey) -> Result<Self, StreamError> {
        let header = read_header(&mut inner).await?;
        Self::from_header(inner, header, Some(key))
    }

    /// Reads the header of an unencrypted (integrity-only) stream, as
    /// [`RestoreReader::unencrypted`].
    pub async fn unencrypted(mut inner: R) -> Result<Self, StreamError> {
        let header = read_header(&mut inner).await?;
        Self::from_header(inner, header, None)
    }

    /// Continues after [`read_header`](Self::read_header), as [`RestoreReader::from_header`].
    pub fn from_header(
        inner: R,
        header: Header,
        key: Option<&DataKey>,
    ) -> Result<Self, StreamError> {
        let chunk = Self::CHUNK.max(header.segment_size() + TAG_LEN);
        let input = Shared::default();
        let sync = RestoreReader::from_header(input.clone(), header, key)?;
        Ok(Self {
            inner,
            sync,
            input,
            chunk,
        })
    }

    /// Reads and parses a stream's header from `inner` without a key, consuming exactly its
    /// bytes, as [`Header::read_from`] (which is what it calls, with the same errors).
    pub async fn read_header(inner: &mut R) -> Result<Header, StreamError> {
        read_header(inner).await
    }

    /// Opens segments on `threads` threads of the reader's own, as
    /// [`RestoreReader::with_threads`].
    pub fn with_threads(mut self, threads: NonZeroUsize) -> Self {
        self.sync = self.sync.with_threads(threads);
        self
    }

    /// The authenticated header.
    pub fn header(&self) -> &Header {
        self.sync.header()
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads the next piece of input into the shared buffer (empty when this is called).
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut bytes = self.input.lock();
        if bytes.data.is_empty() {
            bytes.data = vec![0; self.chunk];
        }
        let mut buf = ReadBuf::new(&mut bytes.data);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut buf);
        let got = buf.filled().len();
        ready!(polled)?;
        (bytes.start, bytes.end) = (0, got);
        bytes.ended = got == 0;
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncRestoreReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let out = buf.initialize_unfilled();
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            match this.sync.read(out) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    ready!(this.poll_input(cx))?;
                }
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl<R> fmt::Debug for AsyncRestoreReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncRestoreReader")
            .field("header", self.sync.header())
            .finish_non_exhaustive()
    }
}

/// Reads a header's bytes (the fixed part, then the extension area and the MAC it announces),
/// then parses them with [`Header::read_from`], so that the errors are the synchronous ones.
async fn read_header<R: AsyncRead + Unpin>(inner: &mut R) -> Result<Header, StreamError> {
    let mut bytes = Vec::with_capacity(FIXED_LEN);
    (&mut *inner)
        .take(FIXED_LEN as u64)
        .read_to_end(&mut bytes)
        .await?;
    if let Some(area) = area_len(&bytes).filter(|&len| len <= Extension::MAX_AREA_LEN) {
        // Grows only as data arrives, so a lying length allocates nothing extra.
        (&mut *inner)
            .take((area + MAC_LEN) as u64)
            .read_to_end(&mut bytes)
            .await?;
    }
    Header::read_from(&mut &bytes[..])
}

#[cfg(test)]
mod tests;
