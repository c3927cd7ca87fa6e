//! The encrypted backup stream: [`BackupWriter`] and [`RestoreReader`].
//!
//! A stream is a header followed by fixed-size segments (the STREAM construction): every segment
//! is sealed with AES-256-GCM (the default) or ChaCha20-Poly1305 under a key derived for this
//! stream alone, with a nonce that binds the segment's index and whether it is the last one. The
//! whole header is authenticated, and its MAC commits to the key, so a wrong key is rejected
//! before a single segment is read. `docs/FORMAT.md` specifies every byte.
//!
//! The reader only ever returns plaintext whose segment has been authenticated. Reordered,
//! duplicated, spliced or altered segments, a truncation at any byte and data appended after the
//! last segment are all errors.
//!
//! **You must call [`BackupWriter::finish`]**: it writes the last segment. A stream whose writer
//! was dropped without `finish()` is rejected by the reader as [`StreamError::Truncated`].
//!
//! ```
//! use std::io::{Read, Write};
//! use strongbox::{BackupWriter, DataKey, RestoreReader};
//!
//! let key = DataKey::generate()?;
//! let mut writer = BackupWriter::new(Vec::new(), &key)?;
//! writer.write_all(b"the database")?;
//! let backup = writer.finish()?;
//!
//! let mut reader = RestoreReader::new(&backup[..], &key)?;
//! let mut restored = Vec::new();
//! reader.read_to_end(&mut restored)?;
//! assert_eq!(restored, b"the database");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Errors raised inside `Read`/`Write` calls are `io::Error`s that wrap a [`StreamError`]; get it
//! back with [`StreamError::from_io`].

use std::io;
use std::num::NonZeroUsize;

use crate::key::KeyId;

#[cfg(feature = "tokio")]
mod async_io;
mod cursor;
mod header;
mod large_read;
mod parallel;
mod read_ahead;
mod reader;
mod seek;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

#[cfg(feature = "tokio")]
pub use async_io::{AsyncBackupWriter, AsyncRestoreReader};
pub use header::Header;
pub use reader::RestoreReader;
pub use writer::BackupWriter;

/// Length in bytes of the authentication tag that follows every segment.
pub const TAG_LEN: usize = 16;

/// The authenticated encryption algorithm of a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// AES-256-GCM (algorithm id 1): the default, fastest on CPUs with AES instructions.
    #[default]
    Aes256Gcm,
    /// ChaCha20-Poly1305 (algorithm id 2): for CPUs without AES instructions.
    ChaCha20Poly1305,
}

impl Algorithm {
    /// The algorithm's id byte in the header.
    pub const fn id(self) -> u8 {
        match self {
            Algorithm::Aes256Gcm => 1,
            Algorithm::ChaCha20Poly1305 => 2,
        }
    }

    /// The algorithm with this header id; `None` for 0 (integrity-only) and unknown ids.
    pub const fn from_id(id: u8) -> Option<Algorithm> {
        match id {
            1 => Some(Algorithm::Aes256Gcm),
            2 => Some(Algorithm::ChaCha20Poly1305),
            _ => None,
        }
    }
}

/// Parameters of a new stream: the algorithm and the segment size; and how many threads the
/// writer seals with.
///
/// ```
/// use std::num::NonZeroUsize;
/// use strongbox::StreamConfig;
/// use strongbox::stream::Algorithm;
///
/// let config = StreamConfig::default()
///     .algorithm(Algorithm::ChaCha20Poly1305)
///     .segment_size(1 << 20)?
///     .threads(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN));
/// assert!(StreamConfig::default().segment_size(100).is_err());
/// # Ok::<(), strongbox::stream::StreamError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    algorithm: Algorithm,
    segment_size: usize,
    threads: NonZeroUsize,
}

impl StreamConfig {
    /// The smallest allowed segment size: 4 KiB of plaintext.
    pub const MIN_SEGMENT_SIZE: usize = 4 << 10;
    /// The largest allowed segment size: 16 MiB of plaintext.
    pub const MAX_SEGMENT_SIZE: usize = 16 << 20;
    /// The default segment size: 64 KiB of plaintext (chosen from measurement; see
    /// `docs/FORMAT.md`).
    pub const DEFAULT_SEGMENT_SIZE: usize = 64 << 10;

    /// Sets the algorithm (the default is [`Algorithm::Aes256Gcm`]). Ignored by
    /// [`BackupWriter::unencrypted`].
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Sets the plaintext segment size in bytes: any value from [`Self::MIN_SEGMENT_SIZE`] to
    /// [`Self::MAX_SEGMENT_SIZE`] inclusive, else [`StreamError::InvalidSegmentSize`].
    pub fn segment_size(mut self, size: usize) -> Result<Self, StreamError> {
        check_segment_size(size).ok_or(StreamError::InvalidSegmentSize { size })?;
        self.segment_size = size;
        Ok(self)
    }

    /// Sets how many threads a [`BackupWriter`] seals segments on (the default is 1: the
    /// calling thread only, so a library never takes more of its host than it was given).
    ///
    /// With `n > 1` the writer seals on up to `n` threads: the calling thread and threads it
    /// starts itself (no global pool is used), all joined before the writer is finished or
    /// dropped. The output is byte-for-byte the same as with one thread, and memory stays at a
    /// few segments per thread. [`RestoreReader::with_threads`] is the reading counterpart.
    ///
    /// `n` is capped at the number of cores ([`std::thread::available_parallelism`]): more
    /// threads only take turns on them. A thread that cannot be started is an I/O error
    /// ([`StreamError::Io`], and the writer is poisoned), never an abort.
    ///
    /// Performance note, not part of the contract (how the work is currently split; see
    /// `docs/PERFORMANCE.md`): the writer starts `n - 1` threads of its own when its first
    /// segment is full, and each segment goes to them as soon as it is full; the calling thread
    /// copies data in, writes sealed segments out in order, and seals too when they fall behind.
    /// A single `write` of at least 64 segments is currently sealed instead by threads started
    /// for that call (no more than it has segments), which copy the data in themselves. At most
    /// `4 n` segments, or about `n` MiB for segments over 256 KiB, are in flight; a stream of one
    /// segment starts no thread.
    pub fn threads(mut self, n: NonZeroUsize) -> Self {
        self.threads = capped_threads(n);
        self
    }

    /// The configured number of threads (after the cap at the number of cores).
    pub fn selected_threads(&self) -> NonZeroUsize {
        self.threads
    }

    /// The configured algorithm.
    pub fn selected_algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The configured plaintext segment size in bytes.
    pub fn selected_segment_size(&self) -> usize {
        self.segment_size
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            algorithm: Algorithm::default(),
            segment_size: Self::DEFAULT_SEGMENT_SIZE,
            threads: NonZeroUsize::MIN,
        }
    }
}

/// `n`, or the number of cores if it is smaller (1 if that cannot be known).
pub(crate) fn capped_threads(n: NonZeroUsize) -> NonZeroUsize {
    n.min(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
}

/// With several threads, a single `write` or `read` of at least this many segments (4 MiB with
/// the default segment size) is sealed or opened straight in the caller's buffer, on threads
/// started for that call; a smaller one goes through the writer's or reader's own threads.
const LARGE_IO_SEGMENTS: usize = 64;

/// Whether a `write` or `read` of `len` bytes is large (see [`LARGE_IO_SEGMENTS`]).
pub(crate) fn is_large_io(len: usize, segment_size: usize) -> bool {
    len / LARGE_IO_SEGMENTS >= segment_size
}

/// Reads into `buf[filled..]` until `buf` is full or the input ends. Returns the new fill level
/// and the error that stopped it, if any (`Interrupted` is retried).
fn fill<R: io::Read>(inner: &mut R, buf: &mut [u8], mut filled: usize) -> (usize, io::Result<()>) {
    while filled < buf.len() {
        match inner.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Err(e)),
        }
    }
    (filled, Ok(()))
}

fn check_segment_size(size: usize) -> Option<()> {
    (StreamConfig::MIN_SEGMENT_SIZE..=StreamConfig::MAX_SEGMENT_SIZE)
        .contains(&size)
        .then_some(())
}

/// An optional header field: opaque bytes that the stream layer stores and authenticates with
/// the header but does not interpret (for example wrapped copies of the key, or a manifest).
///
/// Kinds are chosen by the layers above; a header holds each kind at most once. The whole
/// extension area of a header is limited to [`Extension::MAX_AREA_LEN`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Extension {
    /// What the value is; each kind occurs at most once in a header.
    pub kind: u16,
    /// The value, stored verbatim.
    pub value: Vec<u8>,
}

impl Extension {
    /// Size limit in bytes of a header's whole extension area (each entry costs 6 bytes plus its
    /// value): 1 MiB.
    pub const MAX_AREA_LEN: usize = 1 << 20;

    /// An extension of `kind` holding `value`.
    pub fn new(kind: u16, value: impl Into<Vec<u8>>) -> Self {
        Extension {
            kind,
            value: value.into(),
        }
    }
}

/// Why a stream could not be written or read.
///
/// Authentication failures are deliberately terse: they name the segment, never what was wrong
/// with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The data does not start with the strongbox magic: it is not a strongbox backup.
    #[error("not a strongbox backup (bad magic bytes)")]
    NotStrongbox,
    /// The header has a format version this library does not read.
    #[error("unsupported strongbox backup format version {0}")]
    UnsupportedVersion(u8),
    /// The header names an algorithm id this library does not allow.
    #[error("unsupported algorithm id {0} in the backup header")]
    UnsupportedAlgorithm(u8),
    /// The header is malformed.
    #[error("invalid backup header: {0}")]
    InvalidHeader(&'static str),
    /// The header names the right key but does not authenticate: it was corrupted or altered.
    #[error("the backup header failed authentication (corrupted or altered)")]
    HeaderAuthentication,
    /// The stream was encrypted with another key.
    #[error("wrong key: the backup needs key {expected}, but key {provided} was given")]
    WrongKey {
        /// The id of the key the stream was written with (from the header).
        expected: KeyId,
        /// The id of the key that was given.
        provided: KeyId,
    },
    /// A segment with more input after it failed authentication: it was corrupted, altered,
    /// reordered, duplicated or copied from another stream. No byte of it, or after it, was
    /// returned. A segment that fails where the input ends is [`StreamError::Truncated`].
    #[error("backup segment {index} failed authentication (corrupted or altered)")]
    CorruptSegment {
        /// Index of the segment (0 is the first).
        index: u64,
    },
    /// The stream is cut or altered at its end: the input ends inside its header, before its
    /// first segment, or inside or right after a segment that does not authenticate as the last
    /// one (an interrupted copy, a writer dropped without
    /// [`finish`](BackupWriter::finish), a changed last segment, bytes appended to a short last
    /// segment). Nothing of the failed segment was returned.
    #[error(
        "the backup is truncated or altered at its end (its last segment is missing, cut or changed)"
    )]
    Truncated,
    /// There is data after the last segment.
    #[error("the backup has unexpected data after its last segment")]
    TrailingData,
    /// A reader with a key was given an unencrypted (integrity-only) stream; it refuses it so
    /// that encryption can never be stripped silently.
    #[error("the backup is not encrypted, but a key was given: refusing to read it as encrypted")]
    Unencrypted,
    /// A reader without a key was given an encrypted stream.
    #[error("the backup is encrypted with key {key_id}: a key is required")]
    Encrypted {
        /// The id of the key the stream needs.
        key_id: KeyId,
    },
    /// The segment size is outside 4 KiB..=16 MiB.
    #[error(
        "invalid segment size {size}: it must be between 4096 and 16777216 bytes (4 KiB to 16 MiB)"
    )]
    InvalidSegmentSize {
        /// The rejected size.
        size: usize,
    },
    /// The extensions given to a writer are invalid.
    #[error("invalid header extensions: {0}")]
    InvalidExtensions(&'static str),
    /// The stream would need more than 2^64 segments.
    #[error("the backup is too large: the segment counter would overflow")]
    TooManySegments,
    /// A seek to before the start of the stream, or beyond 2^64 bytes.
    #[error("invalid seek position")]
    InvalidSeek,
    /// An earlier error left the writer unusable; the stream it wrote is incomplete.
    #[error("the backup writer failed earlier and cannot continue")]
    Poisoned,
    /// The random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Reading or writing the underlying stream failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl StreamError {
    /// The `StreamError` inside an `io::Error` returned by the `Read`, `Write` or `Seek`
    /// methods of [`BackupWriter`] and [`RestoreReader`], if there is one.
    ///
    /// I/O errors of the underlying reader or writer are passed through unchanged and give
    /// `None`.
    ///
    /// ```
    /// use std::io::Read;
    /// use strongbox::{DataKey, RestoreReader};
    /// use strongbox::stream::StreamError;
    ///
    /// let key = DataKey::generate()?;
    /// let mut backup = strongbox::BackupWriter::new(Vec::new(), &key)?.finish()?;
    /// backup.pop(); // cut the stream
    /// let err = RestoreReader::new(&backup[..], &key)?
    ///     .read_to_end(&mut Vec::new())
    ///     .unwrap_err();
    /// assert!(matches!(StreamError::from_io(&err), Some(StreamError::Truncated)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_io(err: &io::Error) -> Option<&StreamError> {
        err.get_ref()?.downcast_ref::<StreamError>()
    }

    /// Converts into an `io::Error`: `Io` gives back the original error, every other variant is
    /// wrapped with kind `InvalidData` (`InvalidInput` for [`StreamError::InvalidSeek`]).
    pub fn into_io(self) -> io::Error {
        match self {
            StreamError::Io(err) => err,
            StreamError::InvalidSeek => io::Error::new(io::ErrorKind::InvalidInput, self),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }

    /// A copy of this error if it is one of the stream itself, which stops a reader for good;
    /// `None` for errors worth retrying (I/O) and errors of a call.
    fn permanent(&self) -> Option<StreamError> {
        Some(match *self {
            StreamError::CorruptSegment { index } => StreamError::CorruptSegment { index },
            StreamError::Truncated => StreamError::Truncated,
            StreamError::TrailingData => StreamError::TrailingData,
            StreamError::TooManySegments => StreamError::TooManySegments,
            _ => return None,
        })
    }
}

impl From<StreamError> for io::Error {
    fn from(err: StreamError) -> io::Error {
        err.into_io()
    }
}
