//! [`AsyncBackupWriter`] and [`AsyncRestoreReader`]: the stream over tokio's [`AsyncWrite`] and
//! [`AsyncRead`] (feature `tokio`).
//!
//! Each drives the synchronous type over an in-memory buffer that the asynchronous side fills or
//! empties: the bytes, the segment rules, the threads and the errors are the synchronous
//! types', not a second implementation of them. The writer's buffer holds at most the ciphertext
//! of one `poll_write` (one segment, or the few segments its threads had sealed); the reader's
//! holds at most one read of the input ([`AsyncRestoreReader::CHUNK`] bytes, or one ciphertext
//! segment if larger). Neither blocks the runtime on I/O.
//!
//! Seeking ([`AsyncSeek`] for an [`AsyncRestoreReader`] over an `AsyncSeek` input) is the
//! synchronous reader's own `Seek`, over the same buffer: the buffer answers the synchronous
//! reader's seeks from the bytes it holds, or records where the input must be moved, which the
//! asynchronous side then does. The first seek learns the input's length and keeps the bytes it
//! reads (the last segment and the few bytes after it) until the seek is done.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncSeek, AsyncWrite, ReadBuf};

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
    /// Reader side, once seeking has started: where `data[0]` is in the input.
    origin: Option<u64>,
    /// Reader side: where the synchronous reader seeked, applied when it next reads (so that
    /// the bytes held stay while it seeks elsewhere and back, as a seek of its may).
    position: Option<u64>,
    /// Reader side: the length of the input, learned by the first seek.
    input_len: Option<u64>,
    /// Reader side: where the input must be moved before it is read again (the synchronous
    /// reader seeked outside the bytes held).
    reposition: Option<u64>,
    /// Reader side: the next read of the input appends to the bytes held instead of replacing
    /// them (a seek in progress may go back to them).
    keep: bool,
}

impl Bytes {
    /// Applies the last seek: to a byte held, or to a position the input must be moved to,
    /// with nothing held.
    fn settle(&mut self) {
        let (Some(origin), Some(target)) = (self.origin, self.position.take()) else {
            return;
        };
        match target
            .checked_sub(origin)
            .filter(|&at| at <= self.end as u64)
        {
            Some(at) => self.start = at as usize,
            None => {
                self.origin = Some(target);
                (self.start, self.end, self.ended) = (0, 0, false);
                self.reposition = Some(target);
            }
        }
    }
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
        bytes.settle();
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

/// The reader side's seeks, once the first seek located the bytes held (otherwise
/// [`io::ErrorKind::Unsupported`]): the position of the next byte to be read, the end of the
/// input, or any position. None of them reads or moves the input itself, nor drops the bytes
/// held: the next read does, if it is outside them.
impl Seek for Shared {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let mut bytes = self.lock();
        let origin = bytes.origin.ok_or(io::ErrorKind::Unsupported)?;
        let target = match pos {
            SeekFrom::Current(0) => {
                return Ok(bytes.position.unwrap_or(origin + bytes.start as u64));
            }
            SeekFrom::End(0) => bytes.input_len.ok_or(io::ErrorKind::Unsupported)?,
            SeekFrom::Start(target) => target,
            SeekFrom::Current(_) | SeekFrom::End(_) => {
                return Err(io::ErrorKind::Unsupported.into());
            }
        };
        bytes.position = Some(target);
        Ok(target)
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
///
/// Over an input that is also [`AsyncSeek`] it implements [`AsyncSeek`] on plaintext offsets as
/// [`RestoreReader`] implements `Seek`: the first seek authenticates the last segment (so
/// `SeekFrom::End` and [`plaintext_len`](Self::plaintext_len) can be trusted), the stream must
/// extend to the end of the input, and after a failed seek the position is unknown until the
/// next successful one. A seek (or `plaintext_len`) future dropped before it completed leaves
/// the position unknown in the same way: reads fail with [`StreamError::InvalidSeek`] until a
/// seek completes.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use std::io::{Cursor, SeekFrom};
/// use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
/// use strongbox::{DataKey, StreamConfig};
/// use strongbox::stream::{AsyncBackupWriter, AsyncRestoreReader};
///
/// let key = DataKey::generate()?;
/// let config = StreamConfig::default().segment_size(4096)?;
/// let mut writer = AsyncBackupWriter::with_config(Vec::new(), &key, &config, Vec::new())?;
/// writer.write_all(&(0..50_000u32).map(|i| i as u8).collect::<Vec<_>>()).await?;
/// let backup = writer.finish().await?;
///
/// let mut reader = AsyncRestoreReader::new(Cursor::new(backup), &key).await?;
/// assert_eq!(reader.plaintext_len().await?, 50_000);
/// reader.seek(SeekFrom::Start(40_000)).await?;
/// assert_eq!(reader.read_u8().await?, 40_000u32 as u8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).map_err(|e| e.to_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncRestoreReader<R> {
    inner: R,
    sync: RestoreReader<Shared>,
    /// The input read but not yet taken by `sync`.
    input: Shared,
    chunk: usize,
    /// The seek started by `start_seek` and not yet completed.
    seek: Option<SeekFrom>,
    /// A seek of `inner` started and not yet completed.
    inner_seek: Option<SeekFrom>,
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
            seek: None,
            inner_seek: None,
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

    /// Reads the next piece of input into the shared buffer (all taken when this is called):
    /// in place of the bytes held, or after them while a seek is in progress. Fails with
    /// [`StreamError::InvalidSeek`] while the input is not where the synchronous reader expects
    /// it (a seek did not complete).
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.input.lock();
        let bytes = &mut *guard;
        if bytes.reposition.is_some() {
            return Poll::Ready(Err(StreamError::InvalidSeek.into_io()));
        }
        let from = if bytes.keep { bytes.end } else { 0 };
        if bytes.data.len() < from + self.chunk {
            bytes.data.resize(from + self.chunk, 0);
        }
        let mut buf = ReadBuf::new(&mut bytes.data[from..from + self.chunk]);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut buf);
        let got = buf.filled().len();
        ready!(polled)?;
        if !bytes.keep {
            bytes.origin = bytes.origin.map(|origin| origin + bytes.end as u64);
            bytes.start = 0;
        }
        bytes.end = from + got;
        bytes.ended = got == 0;
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + AsyncSeek + Unpin> AsyncRestoreReader<R> {
    /// The authenticated plaintext length, as [`RestoreReader::plaintext_len`]: the first call
    /// authenticates the last segment; the read position is kept.
    pub async fn plaintext_len(&mut self) -> Result<u64, StreamError> {
        // Until it completes, as a seek to where the reader is.
        self.seek = Some(SeekFrom::Current(0));
        let len = std::future::poll_fn(|cx| {
            self.poll_positioning(cx, |sync| {
                sync.plaintext_len().map_err(StreamError::into_io)
            })
        })
        .await;
        let moved = match len {
            Ok(_) => std::future::poll_fn(|cx| self.poll_reposition(cx)).await,
            Err(_) => Ok(()),
        };
        self.seek = None;
        moved.and(len).map_err(stream_error)
    }

    /// Completes a seek of the inner reader to `to`, after completing any seek of it left in
    /// progress by a dropped future.
    fn poll_inner_seek(&mut self, cx: &mut Context<'_>, to: SeekFrom) -> Poll<io::Result<u64>> {
        loop {
            let Some(started) = self.inner_seek else {
                Pin::new(&mut self.inner).start_seek(to)?;
                self.inner_seek = Some(to);
                continue;
            };
            let completed = ready!(Pin::new(&mut self.inner).poll_complete(cx));
            self.inner_seek = None;
            if started == to {
                return Poll::Ready(completed);
            }
            completed?;
        }
    }

    /// On the first seek: where the bytes held are in the input, and the input's length (the
    /// input is then moved back after the bytes held, before it is read again).
    fn poll_locate(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.input.lock().origin.is_none() {
            let at = ready!(self.poll_inner_seek(cx, SeekFrom::Current(0)))?;
            let mut bytes = self.input.lock();
            let origin = at.checked_sub(bytes.end as u64);
            bytes.origin = Some(origin.ok_or_else(|| StreamError::InvalidSeek.into_io())?);
            bytes.reposition = Some(at);
        }
        if self.input.lock().input_len.is_none() {
            let len = ready!(self.poll_inner_seek(cx, SeekFrom::End(0)))?;
            self.input.lock().input_len = Some(len);
        }
        Poll::Ready(Ok(()))
    }

    /// Moves the input where the synchronous reader expects it, if it is not there.
    fn poll_reposition(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut bytes = self.input.lock();
        bytes.settle();
        let reposition = bytes.reposition;
        drop(bytes);
        let Some(to) = reposition else {
            return Poll::Ready(Ok(()));
        };
        ready!(self.poll_inner_seek(cx, SeekFrom::Start(to)))?;
        self.input.lock().reposition = None;
        Poll::Ready(Ok(()))
    }

    /// Runs `op`, a positioning call of the synchronous reader, until it no longer waits for
    /// input: between attempts, moves the input where it asks and reads it, keeping every byte
    /// read (an attempt starts again from where the previous one did).
    fn poll_positioning<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut RestoreReader<Shared>) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        ready!(self.poll_locate(cx))?;
        self.input.lock().keep = true;
        let result = loop {
            match op(&mut self.sync) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                done => break done,
            }
            ready!(self.poll_reposition(cx))?;
            ready!(self.poll_input(cx))?;
        };
        self.input.lock().keep = false;
        Poll::Ready(result)
    }
}

/// Seeks on plaintext offsets, as [`RestoreReader`]'s `Seek`.
impl<R: AsyncRead + AsyncSeek + Unpin> AsyncSeek for AsyncRestoreReader<R> {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        self.get_mut().seek = Some(position);
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let Some(position) = this.seek else {
            return Poll::Ready(this.sync.stream_position());
        };
        let sought = ready!(this.poll_positioning(cx, |sync| sync.seek(position)));
        let Ok(target) = sought else {
            this.seek = None;
            return Poll::Ready(sought);
        };
        // Seeking again to the same offset (if moving the input is pending) changes nothing.
        this.seek = Some(SeekFrom::Start(target));
        let moved = ready!(this.poll_reposition(cx));
        this.seek = None;
        Poll::Ready(moved.map(|()| target))
    }
}

/// The [`StreamError`] inside `err`, or `err` as [`StreamError::Io`].
fn stream_error(err: io::Error) -> StreamError {
    if StreamError::from_io(&err).is_none() {
        return StreamError::Io(err);
    }
    *err.into_inner()
        .and_then(|e| e.downcast::<StreamError>().ok())
        .expect("checked above")
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncRestoreReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.seek.is_some() {
            return Poll::Ready(Err(StreamError::InvalidSeek.into_io()));
        }
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
