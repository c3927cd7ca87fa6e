//! [`AsyncRestoreReader`]: the synchronous [`RestoreReader`] over an [`Input`] that polls the
//! asynchronous input straight into the buffer the reader reads into (its segment buffer, or
//! the caller's for a whole segment), so that the input is copied no more than by the
//! synchronous reader.
//!
//! Seeking ([`AsyncSeek`] over an `AsyncSeek` input) is the synchronous reader's own `Seek`,
//! over the bytes the input holds while a seek is in progress: the held bytes answer the
//! synchronous reader's seeks, or record where the input must be moved, which the asynchronous
//! side then does. The first seek learns the input's length and keeps the bytes it reads (the
//! last segment and the few bytes after it) until the seek is done.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncSeek, ReadBuf};

use crate::key::DataKey;
use crate::stream::header::{FIXED_LEN, Header, MAC_LEN, area_len};
use crate::stream::{Extension, RestoreReader, StreamError, TAG_LEN};

/// The asynchronous input as the synchronous reader reads it. Outside a seek, `read` polls
/// `inner` with the waker of the task polling the [`AsyncRestoreReader`]; a `Pending` poll is an
/// [`io::ErrorKind::WouldBlock`] error, which the reader treats as any I/O error: it keeps what
/// it read and may be called again. While a seek is in progress, and after it until they are
/// taken, `read` returns the bytes held.
struct Input<R> {
    inner: R,
    /// The waker of the task that last polled the reader.
    waker: Waker,
    /// A poll of `inner` returned `Pending` since this was last cleared.
    pending: bool,
    held: Held,
}

/// Bytes of the input read ahead of the synchronous reader while it seeks.
#[derive(Default)]
struct Held {
    /// The bytes not yet taken are `data[start..end]`.
    data: Vec<u8>,
    start: usize,
    end: usize,
    /// The input ended after `data[..end]`.
    ended: bool,
    /// Once seeking has started: where `data[0]` is in the input.
    origin: Option<u64>,
    /// Where the synchronous reader seeked, applied when it next reads (so that the bytes held
    /// stay while it seeks elsewhere and back, as a seek of its may).
    position: Option<u64>,
    /// The length of the input, learned by the first seek.
    input_len: Option<u64>,
    /// Where the input must be moved before it is read again (the synchronous reader seeked
    /// outside the bytes held).
    reposition: Option<u64>,
    /// A seek is in progress: the synchronous reader reads only the bytes held, and reading
    /// the input appends to them (the seek may go back to them).
    keep: bool,
}

impl Held {
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

    /// Whether the synchronous reader's next read is answered from here.
    fn answers(&self) -> bool {
        self.start < self.end || self.ended || self.keep || self.reposition.is_some()
    }

    /// Copies held bytes into `out`; at the end of the input, 0. With nothing held, a seek in
    /// progress waits for input ([`io::ErrorKind::WouldBlock`]); otherwise the input is not
    /// where the synchronous reader expects it (a seek did not complete).
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let (start, end) = (self.start, self.end);
        if start == end {
            return match (self.ended, self.keep) {
                (true, _) => Ok(0),
                (false, true) => Err(io::ErrorKind::WouldBlock.into()),
                (false, false) => Err(StreamError::InvalidSeek.into_io()),
            };
        }
        let n = (end - start).min(out.len());
        out[..n].copy_from_slice(&self.data[start..start + n]);
        self.start += n;
        Ok(n)
    }

    /// Records `n` bytes read from the input past the bytes held (all taken).
    fn passed(&mut self, n: usize) {
        self.origin = self.origin.map(|origin| origin + (self.end + n) as u64);
        (self.start, self.end) = (0, 0);
    }
}

impl<R: AsyncRead + Unpin> Read for Input<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.held.settle();
        if self.held.answers() {
            return self.held.read(out);
        }
        let mut buf = ReadBuf::new(out);
        let mut cx = Context::from_waker(&self.waker);
        match Pin::new(&mut self.inner).poll_read(&mut cx, &mut buf) {
            Poll::Pending => {
                self.pending = true;
                Err(io::ErrorKind::WouldBlock.into())
            }
            Poll::Ready(result) => {
                result?;
                let n = buf.filled().len();
                self.held.passed(n);
                Ok(n)
            }
        }
    }
}

/// The synchronous reader's seeks, once the first seek located the bytes held (otherwise
/// [`io::ErrorKind::Unsupported`]): the position of the next byte to be read, the end of the
/// input, or any position. None of them reads or moves the input itself, nor drops the bytes
/// held: the next read does, if it is outside them.
impl<R> Seek for Input<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let held = &mut self.held;
        let origin = held.origin.ok_or(io::ErrorKind::Unsupported)?;
        let target = match pos {
            SeekFrom::Current(0) => {
                return Ok(held.position.unwrap_or(origin + held.start as u64));
            }
            SeekFrom::End(0) => held.input_len.ok_or(io::ErrorKind::Unsupported)?,
            SeekFrom::Start(target) => target,
            SeekFrom::Current(_) | SeekFrom::End(_) => {
                return Err(io::ErrorKind::Unsupported.into());
            }
        };
        held.position = Some(target);
        Ok(target)
    }
}

/// Decrypts a backup from any tokio [`AsyncRead`]: what a [`RestoreReader`] returns for the
/// same bytes, with the same errors (inside the `io::Error`s, as [`StreamError::from_io`] finds
/// them), and the same guarantee: no plaintext of a segment is returned before its tag was
/// verified.
///
/// A read future dropped while pending returned nothing and loses nothing: the input it read
/// stays in the reader for the next read. With [`with_threads`](Self::with_threads) `n > 1`,
/// segments are opened on the reader's own threads as in the synchronous reader; with one
/// thread, the runtime's thread opens one segment per read.
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
    sync: RestoreReader<Input<R>>,
    /// The most bytes of input read at a time while a seek is in progress.
    chunk: usize,
    /// The seek started by `start_seek` and not yet completed.
    seek: Option<SeekFrom>,
    /// A seek of the input started and not yet completed.
    inner_seek: Option<SeekFrom>,
}

impl<R: AsyncRead + Unpin> AsyncRestoreReader<R> {
    /// The most bytes of input read at a time while a seek is in progress (or one ciphertext
    /// segment, if larger). Outside seeks, the input is read straight into the reader's segment
    /// buffer or the caller's.
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
        let input = Input {
            inner,
            waker: Waker::noop().clone(),
            pending: false,
            held: Held::default(),
        };
        Ok(Self {
            sync: RestoreReader::from_header(input, header, key)?,
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
        &self.sync.get_ref().inner
    }

    /// While a seek is in progress: reads the next piece of input after the bytes held.
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let input = &mut self.sync.cursor.inner;
        let held = &mut input.held;
        let from = held.end;
        if held.data.len() < from + self.chunk {
            held.data.resize(from + self.chunk, 0);
        }
        let mut buf = ReadBuf::new(&mut held.data[from..from + self.chunk]);
        ready!(Pin::new(&mut input.inner).poll_read(cx, &mut buf))?;
        let got = buf.filled().len();
        held.end = from + got;
        held.ended = got == 0;
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
        moved.and(len).map_err(|err| {
            err.downcast::<StreamError>()
                .unwrap_or_else(StreamError::Io)
        })
    }

    /// Completes a seek of the input to `to`, after completing any seek of it left in progress
    /// by a dropped future.
    fn poll_inner_seek(&mut self, cx: &mut Context<'_>, to: SeekFrom) -> Poll<io::Result<u64>> {
        let inner = &mut self.sync.cursor.inner.inner;
        loop {
            let Some(started) = self.inner_seek else {
                Pin::new(&mut *inner).start_seek(to)?;
                self.inner_seek = Some(to);
                continue;
            };
            let completed = ready!(Pin::new(&mut *inner).poll_complete(cx));
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
        if self.held().origin.is_none() {
            let at = ready!(self.poll_inner_seek(cx, SeekFrom::Current(0)))?;
            let held = self.held();
            let origin = at.checked_sub(held.end as u64);
            held.origin = Some(origin.ok_or_else(|| StreamError::InvalidSeek.into_io())?);
            held.reposition = Some(at);
        }
        if self.held().input_len.is_none() {
            let len = ready!(self.poll_inner_seek(cx, SeekFrom::End(0)))?;
            self.held().input_len = Some(len);
        }
        Poll::Ready(Ok(()))
    }

    /// Moves the input where the synchronous reader expects it, if it is not there.
    fn poll_reposition(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.held().settle();
        let Some(to) = self.held().reposition else {
            return Poll::Ready(Ok(()));
        };
        ready!(self.poll_inner_seek(cx, SeekFrom::Start(to)))?;
        self.held().reposition = None;
        Poll::Ready(Ok(()))
    }

    /// Runs `op`, a positioning call of the synchronous reader, until it no longer waits for
    /// input: between attempts, moves the input where it asks and reads it, keeping every byte
    /// read (an attempt starts again from where the previous one did).
    fn poll_positioning<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut RestoreReader<Input<R>>) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        ready!(self.poll_locate(cx))?;
        self.held().keep = true;
        let result = loop {
            match op(&mut self.sync) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                done => break done,
            }
            ready!(self.poll_reposition(cx))?;
            ready!(self.poll_input(cx))?;
        };
        self.held().keep = false;
        Poll::Ready(result)
    }

    fn held(&mut self) -> &mut Held {
        &mut self.sync.cursor.inner.held
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
        let out = buf.initialize_unfilled();
        if out.is_empty() {
            return Poll::Ready(Ok(()));
        }
        this.sync.cursor.inner.waker.clone_from(cx.waker());
        // A `WouldBlock` with no poll of the input pending in this call is one the reader met
        // earlier and returned after the segments before it (with several threads): the next
        // read polls the input again, with this call's waker.
        let mut retried = false;
        loop {
            this.sync.cursor.inner.pending = false;
            let err = match this.sync.read(out) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => err,
                Err(err) => return Poll::Ready(Err(err)),
            };
            if this.sync.cursor.inner.pending {
                return Poll::Pending;
            }
            if retried {
                return Poll::Ready(Err(err));
            }
            retried = true;
        }
    }
}

impl<R> fmt::Debug for AsyncRestoreReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncRestoreReader")
            .field("header", &self.sync.header)
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
