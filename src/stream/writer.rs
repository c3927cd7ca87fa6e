//! [`BackupWriter`]: seals a stream of any length in constant memory.

use std::fmt;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::header::Header;
use super::parallel::{self, Helpers, InOrder, Pipeline, Segment};
use super::segment::{SegmentCipher, SegmentCounter};
use super::{Algorithm, Extension, StreamConfig, StreamError, TAG_LEN};
use crate::key::{DataKey, fill_random};

/// Encrypts a backup into any [`Write`]r, one authenticated segment at a time.
///
/// The header is written by the constructor. Plaintext is buffered until a whole segment is
/// available (a full segment is held back until more data or [`finish`](Self::finish) shows
/// whether it is the last one), then sealed in place and written. [`Write::flush`] flushes the
/// inner writer but cannot emit a partial segment.
///
/// With [`StreamConfig::threads`] set to `n > 1`, the writer seals on up to `n` threads, of its
/// own (no global pool is used) and joined before it is finished or dropped. The output is the
/// same bytes as with one thread, and memory stays at a few segments per thread. How the work
/// is split is a performance detail, not part of the contract: currently the segments of small
/// writes go to the writer's threads as they fill, a `write` of at least 64 segments (4 MiB by
/// default) is copied in and sealed by threads started for that call, and the calling thread
/// writes the segments in order (see `docs/PERFORMANCE.md`).
///
/// **You must call [`finish`](Self::finish)**: it seals the last segment. A stream whose writer
/// was dropped without it is rejected by [`RestoreReader`](super::RestoreReader) as
/// [`StreamError::Truncated`].
///
/// After any error the writer is poisoned: every later call fails with
/// [`StreamError::Poisoned`], and what was written is an incomplete stream.
///
/// ```
/// use std::io::Write;
/// use strongbox::{BackupWriter, DataKey, StreamConfig};
/// use strongbox::stream::Algorithm;
///
/// let key = DataKey::generate()?;
/// let config = StreamConfig::default().algorithm(Algorithm::ChaCha20Poly1305);
/// let mut writer = BackupWriter::with_config(Vec::new(), &key, &config, Vec::new())?;
/// writer.write_all(&[42; 100_000])?;
/// let backup: Vec<u8> = writer.finish()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BackupWriter<W: Write> {
    inner: W,
    header: Header,
    cipher: Arc<SegmentCipher>,
    counter: SegmentCounter,
    segment_size: usize,
    threads: NonZeroUsize,
    /// The segment being filled: its plaintext, then room for its tag. Sealed in place and
    /// written with one thread; handed to the sealing threads with several. Zeroized on drop, so
    /// no plaintext is left behind in freed memory.
    buf: Zeroizing<Vec<u8>>,
    /// Plaintext bytes in `buf`.
    filled: usize,
    /// With several threads, once a segment has gone to them: the threads and the segments
    /// they hold.
    pipeline: Option<Pipeline>,
    /// With several threads, once a large write has been sealed on threads started for it:
    /// the buffers of the segments it seals, for the next one.
    direct: Option<InOrder>,
    poisoned: bool,
}

impl<W: Write> BackupWriter<W> {
    /// Starts an AES-256-GCM stream with the default segment size, encrypted with `key`, and
    /// writes its header to `inner`.
    pub fn new(inner: W, key: &DataKey) -> Result<Self, StreamError> {
        Self::with_config(inner, key, &StreamConfig::default(), Vec::new())
    }

    /// Starts a stream encrypted with `key` using `config`, with optional header `extensions`
    /// (authenticated with the header, stored in ascending order of kind; each kind at most
    /// once, at most [`Extension::MAX_AREA_LEN`] bytes in all), and writes its header to `inner`.
    pub fn with_config(
        inner: W,
        key: &DataKey,
        config: &StreamConfig,
        extensions: Vec<Extension>,
    ) -> Result<Self, StreamError> {
        Self::create(
            inner,
            Some((key, config.algorithm)),
            config,
            extensions,
            random_salt()?,
        )
    }

    /// Starts an **unencrypted, integrity-only** stream (algorithm id 0) and writes its header
    /// to `inner`. The configured algorithm is ignored.
    ///
    /// The data is stored in clear. Each segment and the header carry a SHA-256-based checksum
    /// bound to the segment's position and to this stream's random salt, so corruption,
    /// truncation, reordering and segments from other streams are detected; but anyone can
    /// compute those checksums, so this mode detects accidents, **not** deliberate tampering.
    /// Read it back with [`RestoreReader::unencrypted`](super::RestoreReader::unencrypted); a
    /// reader given a key refuses it.
    pub fn unencrypted(
        inner: W,
        config: &StreamConfig,
        extensions: Vec<Extension>,
    ) -> Result<Self, StreamError> {
        Self::create(inner, None, config, extensions, random_salt()?)
    }

    /// The constructor behind the public ones (the algorithm comes with the key, the segment
    /// size and threads from `config`); a fixed `salt` is only for tests and test vectors.
    pub(crate) fn create(
        mut inner: W,
        key: Option<(&DataKey, Algorithm)>,
        config: &StreamConfig,
        extensions: Vec<Extension>,
        salt: [u8; 32],
    ) -> Result<Self, StreamError> {
        let segment_size = config.segment_size;
        let (header, cipher) = Header::seal_new(key, segment_size, extensions, salt)?;
        inner.write_all(header.as_bytes())?;
        Ok(BackupWriter {
            inner,
            header,
            cipher: Arc::new(cipher),
            counter: SegmentCounter::new(),
            segment_size,
            threads: config.threads,
            buf: Zeroizing::new(vec![0; segment_size + TAG_LEN]),
            filled: 0,
            pipeline: None,
            direct: None,
            poisoned: false,
        })
    }

    /// The header this writer wrote.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, to be changed between writes (the async writer's output).
    #[cfg(feature = "tokio")]
    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The inner writer, after [`seal_last`](Self::seal_last).
    #[cfg(feature = "tokio")]
    pub(crate) fn into_inner(self) -> W {
        self.inner
    }

    /// Reads `input` to its end into the stream, straight into the segment buffers: no buffer
    /// of the caller's, and no copy but the reads themselves (each read asks for the rest of a
    /// segment and the room for its tag). Returns the bytes read. The stream is the same as
    /// `write`ing the same bytes; call [`finish`](Self::finish) after it.
    ///
    /// Performance note, not part of the contract: with several threads the segments currently
    /// go to the writer's own threads as they fill (started once, however long the input),
    /// while the calling thread reads and writes.
    ///
    /// A failed read (other than [`io::ErrorKind::Interrupted`], which is retried) is returned
    /// as it is and leaves the writer usable: what was read before it is in the stream. A
    /// failed write poisons the writer, as with `write`.
    pub fn copy_from<R: Read + ?Sized>(&mut self, input: &mut R) -> io::Result<u64> {
        if self.poisoned {
            return Err(StreamError::Poisoned.into());
        }
        let size = self.segment_size;
        let mut total = 0u64;
        loop {
            let got = match input.read(&mut self.buf[self.filled..size + TAG_LEN]) {
                Ok(0) => return Ok(total),
                Ok(got) => got,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            total += got as u64;
            self.filled += got;
            if self.filled > size {
                // Bytes past the segment: it is not the last. They start the next one.
                let mut spill = Zeroizing::new([0; TAG_LEN]);
                let spilled = self.filled - size;
                spill[..spilled].copy_from_slice(&self.buf[size..self.filled]);
                self.filled = size;
                self.emit(false)?;
                self.buf[..spilled].copy_from_slice(&spill[..spilled]);
                self.filled = spilled;
            }
        }
    }

    /// Seals and writes the last segment, flushes the inner writer and returns it.
    ///
    /// The last segment holds the buffered plaintext (1 byte to one segment); a stream with no
    /// plaintext at all gets one empty last segment.
    pub fn finish(mut self) -> Result<W, StreamError> {
        self.seal_last()?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Seals the last segment and writes every segment out, without flushing; nothing may be
    /// written after it.
    pub(crate) fn seal_last(&mut self) -> Result<(), StreamError> {
        if self.poisoned {
            return Err(StreamError::Poisoned);
        }
        self.emit(true)?;
        self.write_all_sealed()
    }

    /// Seals the buffered plaintext as the next segment (the last one if `last`) and writes it,
    /// or hands it to the sealing threads, writing the segments they have sealed.
    fn emit(&mut self, last: bool) -> Result<(), StreamError> {
        self.poisoning(|w| w.seal_buffered(last))
    }

    /// Runs `step`; if it fails, the output is incomplete: the writer is poisoned.
    fn poisoning(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        let result = step(self);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn seal_buffered(&mut self, last: bool) -> Result<(), StreamError> {
        let index = self.counter.advance(last)?;
        let len = std::mem::take(&mut self.filled) + TAG_LEN;
        // A stream of one segment starts no thread.
        if self.threads.get() == 1 || (last && self.pipeline.is_none()) {
            self.cipher.seal(index, last, &mut self.buf[..len]);
            self.inner.write_all(&self.buf[..len])?;
            return Ok(());
        }
        let pipeline = pipeline(
            &mut self.pipeline,
            self.threads,
            self.segment_size,
            &self.cipher,
        )?;
        // Writes what is ready, and makes room for this segment (waiting only if none is free),
        // so that the buffer of a segment written out is kept for the next one.
        let (order, crew) = pipeline.split();
        let keep = order.limit() - 1;
        write_sealed(order, crew, &mut self.inner, keep)?;
        let buf = std::mem::replace(&mut self.buf, pipeline.spare());
        pipeline.push(Segment {
            index,
            last,
            len,
            buf,
            ok: true,
        });
        Ok(())
    }

    /// With several threads: seals the whole segments of `data` (none of them the last one)
    /// on scoped threads that copy each one straight from `data` into a buffer and seal it
    /// there, while the calling thread writes them in order (and seals some itself when the
    /// threads fall behind). Segments handed out before are written first.
    fn seal_direct(&mut self, data: &[u8]) -> Result<(), StreamError> {
        self.write_all_sealed()?;
        let size = self.segment_size;
        let full = size + TAG_LEN;
        let threads = self.threads;
        let order = self
            .direct
            .get_or_insert_with(|| InOrder::new(threads, size, full));
        let (cipher, inner, counter) = (&*self.cipher, &mut self.inner, &mut self.counter);
        let seal = |(index, plain, mut buf): (u64, &[u8], Zeroizing<Vec<u8>>)| {
            buf[..size].copy_from_slice(plain);
            cipher.seal(index, false, &mut buf[..full]);
            Segment {
                index,
                last: false,
                len: full,
                buf,
                ok: true,
            }
        };
        let segments = NonZeroUsize::new(data.len() / size).expect("a large write");
        parallel::with_helpers(self.threads.min(segments), seal, |helpers| {
            for plain in data.chunks(size) {
                // Room first, so that the buffer of the segment written out is reused.
                let keep = order.limit() - 1;
                write_sealed(order, helpers, inner, keep)?;
                let index = counter.advance(false)?;
                let buf = order.spare();
                order.push(helpers, index, (index, plain, buf));
            }
            write_sealed(order, helpers, inner, 0)?;
            Ok(())
        })?
    }

    /// Writes every segment handed to the sealing threads, waiting for them.
    fn write_all_sealed(&mut self) -> Result<(), StreamError> {
        self.poisoning(|w| {
            if let Some(pipeline) = &mut w.pipeline {
                let (order, crew) = pipeline.split();
                write_sealed(order, crew, &mut w.inner, 0)?;
            }
            Ok(())
        })
    }
}

/// The writer's pipeline, started on first need: `threads - 1` threads sealing segments in
/// buffers of their own.
fn pipeline<'a>(
    slot: &'a mut Option<Pipeline>,
    threads: NonZeroUsize,
    segment_size: usize,
    cipher: &Arc<SegmentCipher>,
) -> io::Result<&'a mut Pipeline> {
    if let Some(pipeline) = slot {
        return Ok(pipeline);
    }
    let cipher = Arc::clone(cipher);
    Ok(slot.insert(Pipeline::new(
        threads,
        segment_size,
        segment_size + TAG_LEN,
        "strongbox-seal",
        move |segment| cipher.seal(segment.index, segment.last, &mut segment.buf[..segment.len]),
    )?))
}

/// Writes the sealed segments at the front of `order`, in order, until at most `keep` are left
/// pending (waiting for them, and sealing waiting ones on the calling thread, while more are).
/// `helpers` are the threads sealing them: the writer's own, or those of one large `write`.
fn write_sealed<T>(
    order: &mut InOrder,
    helpers: &Helpers<'_, T, Segment>,
    inner: &mut impl Write,
    keep: usize,
) -> io::Result<()> {
    loop {
        let segment = match order.pop_ready(helpers) {
            Some(segment) => segment,
            None if order.len() > keep => order.pop(helpers)?.expect("pending"),
            None => return Ok(()),
        };
        inner.write_all(&segment.buf[..segment.len])?;
        order.recycle(segment.buf);
    }
}

impl<W: Write> Write for BackupWriter<W> {
    /// Buffers `data`, sealing and writing every segment it completes; always consumes all of
    /// `data` unless it fails.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(StreamError::Poisoned.into());
        }
        let size = self.segment_size;
        let mut rest = data;
        while !rest.is_empty() {
            if self.filled == size {
                // More data follows, so the buffered segment is not the last one.
                self.emit(false)?;
            }
            if self.filled == 0 && self.threads.get() > 1 && super::is_large_io(rest.len(), size) {
                // Every whole segment of `rest` that more of `rest` follows is not the last.
                let whole = (rest.len() - 1) / size * size;
                self.poisoning(|w| w.seal_direct(&rest[..whole]))?;
                rest = &rest[whole..];
                continue;
            }
            let n = rest.len().min(size - self.filled);
            self.buf[self.filled..][..n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    /// Writes every segment sealed so far and flushes the inner writer. Buffered plaintext
    /// (less than a segment, or a full segment whose successor is not known yet) stays buffered
    /// until more data or `finish()`.
    fn flush(&mut self) -> io::Result<()> {
        if self.poisoned {
            return Err(StreamError::Poisoned.into());
        }
        self.write_all_sealed()?;
        self.inner.flush()
    }
}

impl<W: Write> fmt::Debug for BackupWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupWriter")
            .field("header", &self.header)
            .field("counter", &self.counter)
            .field("threads", &self.threads)
            .field("buffered", &self.filled)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

fn random_salt() -> Result<[u8; 32], StreamError> {
    let mut salt = [0u8; 32];
    fill_random(&mut salt).map_err(|_| StreamError::Random)?;
    Ok(salt)
}
