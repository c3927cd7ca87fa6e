//! [`BackupWriter`]: seals a stream of any length in constant memory.

use std::fmt;
use std::io::{self, Write};
use std::num::NonZeroUsize;

use zeroize::Zeroizing;

use super::header::Header;
use super::parallel;
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
/// With [`StreamConfig::threads`] set to `n > 1`, the writer buffers a batch of consecutive
/// segments (about `n` MiB) and seals it on `n` scoped threads, the calling thread joining in
/// once it has written the previous, already sealed batch (so sealing and output overlap); a
/// large `write` that covers a whole batch is copied into the buffer by the sealing threads. The
/// output is the same bytes, in the same order, as with one thread; memory is two batches.
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
/// use strongbox::{Algorithm, BackupWriter, DataKey, StreamConfig};
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
    cipher: SegmentCipher,
    counter: SegmentCounter,
    segment_size: usize,
    threads: NonZeroUsize,
    /// Segments in the current batch (one with one thread; see `parallel::next_batch`).
    batch: usize,
    /// One batch of segments, laid out as in the stream: segment `j`'s plaintext at
    /// `j * (segment_size + TAG_LEN)`, followed by room for its tag. One segment with one thread.
    /// Replaced (never reallocated in place) only while empty, as the batch grows; zeroized on
    /// drop, so no plaintext is left behind in freed memory.
    buf: Zeroizing<Vec<u8>>,
    /// Plaintext bytes buffered in the batch (segments fill in order).
    filled: usize,
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
        let batch = parallel::first_batch(config.threads);
        Ok(BackupWriter {
            inner,
            header,
            cipher,
            counter: SegmentCounter::new(),
            segment_size,
            threads: config.threads,
            batch,
            buf: Zeroizing::new(vec![0; batch * (segment_size + TAG_LEN)]),
            filled: 0,
            poisoned: false,
        })
    }

    /// Plaintext capacity of the batch.
    fn capacity(&self) -> usize {
        self.batch * self.segment_size
    }

    /// The header this writer wrote.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Seals and writes the last segment, flushes the inner writer and returns it.
    ///
    /// The last segment holds the buffered plaintext (1 byte to one segment); a stream with no
    /// plaintext at all gets one empty last segment.
    pub fn finish(mut self) -> Result<W, StreamError> {
        if self.poisoned {
            return Err(StreamError::Poisoned);
        }
        self.emit(true, None)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Seals the buffered plaintext as the next segments (the last of them marked `last`) and
    /// writes them; or, with `source` (whole segments, none of them the last, more than a batch
    /// or exactly one), seals and writes `source` instead, copied in by the sealing threads.
    ///
    /// The segments go one at a time to whichever thread is free (see [`parallel::ordered`]);
    /// the calling thread writes each one as soon as it and those before it are sealed, and
    /// seals too when the next one is not ready. A `source` longer than the batch goes through
    /// the batch's slots in turn.
    fn emit(&mut self, last: bool, source: Option<&[u8]>) -> Result<(), StreamError> {
        let result = self.seal_and_write(last, source);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn seal_and_write(&mut self, last: bool, source: Option<&[u8]>) -> Result<(), StreamError> {
        let size = self.segment_size;
        let full = size + TAG_LEN;
        // Segments 0..count; all full but the last one of the buffered plaintext (which may be
        // empty only when it is the whole stream).
        let (count, len) = match source {
            Some(source) => {
                debug_assert!(self.filled == 0 && source.len() % size == 0 && !last);
                let count = source.len() / size;
                let slots = parallel::slots(self.threads).min(count);
                if self.buf.len() < slots * full {
                    self.buf = Zeroizing::new(vec![0; slots * full]);
                }
                (count, slots * full)
            }
            None => {
                let count = self.filled.div_ceil(size).max(1);
                let last_len = self.filled - (count - 1) * size;
                (count, (count - 1) * full + last_len + TAG_LEN)
            }
        };
        let first = self.counter.advance(last && count == 1)?;
        for j in 1..count {
            self.counter.advance(last && j == count - 1)?;
        }
        let (cipher, inner) = (&self.cipher, &mut self.inner);
        let seal = |j: usize, segment: &mut [u8]| {
            if let Some(source) = source {
                segment[..size].copy_from_slice(&source[j * size..][..size]);
            }
            // Indices are consecutive: the counter handed out first..first + count.
            cipher.seal(first + j as u64, last && j == count - 1, segment);
        };
        let buf = &mut self.buf[..len];
        parallel::ordered(self.threads, buf, full, count, seal, |sealed| {
            inner.write_all(sealed)
        })?;
        self.filled = 0;
        // Only a batch filled by small writes grows the batch (and its memory).
        if !last && source.is_none() && count == self.batch {
            self.batch = parallel::next_batch(self.batch, self.threads, size);
            if self.buf.len() < self.batch * full {
                self.buf = Zeroizing::new(vec![0; self.batch * full]);
            }
        }
        Ok(())
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
        let full = size + TAG_LEN;
        let mut rest = data;
        while !rest.is_empty() {
            if self.filled == self.capacity() {
                // More data follows, so the full segments are not the last ones.
                self.emit(false, None)?;
            }
            let capacity = self.capacity();
            if self.filled > 0 && self.filled % size == 0 && rest.len() > capacity {
                // Whole segments are buffered (a segment held back by the previous `write`) and
                // more than a batch follows: send them on, so that the rest goes straight through.
                self.emit(false, None)?;
                continue;
            }
            if self.filled == 0 && rest.len() > capacity {
                // More than a batch, with more data after it: seal all of it but the last
                // (partial or full) segment straight from `data`.
                let (whole, after) = rest.split_at((rest.len() - 1) / size * size);
                self.emit(false, Some(whole))?;
                rest = after;
                continue;
            }
            // Fill the current segment of the batch.
            let (j, offset) = (self.filled / size, self.filled % size);
            let n = rest.len().min(size - offset);
            self.buf[j * full + offset..][..n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    /// Flushes the inner writer. Buffered plaintext (less than a segment, or a full segment
    /// whose successor is not known yet) stays buffered until more data or `finish()`.
    fn flush(&mut self) -> io::Result<()> {
        if self.poisoned {
            return Err(StreamError::Poisoned.into());
        }
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
