//! File plumbing shared by backups and restores: the backup file that appears only when
//! complete, the compress-then-encrypt writer, restore working directories, and the read side's
//! [`Tap`] (errors are attributed by [`Place`](super::input::Place)).

use std::cell::RefCell;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;

use super::BackupError;
use super::manifest::Compression;
use crate::fs::{
    Replace, TempDir, TempFile, abandoned, remove_stale, temp_names, temp_prefix, try_lock,
};
use crate::stream::{BackupWriter, StreamError};

/// zstd level of logical backups (the library's default: fast, good ratio).
const ZSTD_LEVEL: i32 = 3;

pub(crate) use crate::fs::{parent_dir as parent_of, sync_dir};

/// Whether anything (even a dangling symlink) exists at `path`.
pub(crate) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Suffix of a backup file being written.
const PARTIAL_SUFFIX: &str = ".partial";
/// Name of the lock file inside a restore's working directory.
const RESTORE_LOCK: &str = "lock";
/// Name of the directory being built inside a restore's working directory.
pub(crate) const RESTORE_TREE: &str = "tree";

/// Prefix of the working directories of a restore to `target`: `.<name>.restoring-` (the name
/// cut as in temporary file names, see [`crate::fs`]).
fn restore_prefix(target: &Path) -> String {
    let prefix = temp_prefix(target).unwrap_or_else(|| "..".to_owned());
    format!("{prefix}restoring-")
}

/// Removes the working directories that killed restores to `target` left beside it:
/// directories named exactly `.<name>.restoring-XXXXXX` whose `lock` file nobody holds (a running
/// restore holds it until it ends), and empty ones without a `lock` file (a restore killed
/// before it made one). Best effort: what cannot be removed stays.
pub(crate) fn remove_stale_restores(target: &Path) {
    for dir in temp_names(parent_of(target), &restore_prefix(target), "") {
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let lock = dir.join(RESTORE_LOCK);
        if let Some(_held) = abandoned(&lock) {
            let _ = fs::remove_dir_all(&dir);
        } else if !exists(&lock) {
            // Only succeeds if it is empty.
            let _ = fs::remove_dir(&dir);
        }
    }
}

/// Creates a restore's working directory beside `target` and takes its lock: the directory
/// holds the `lock` file, locked while the returned handle lives, and the empty directory
/// `tree` (owner-only on Unix) in which the result is built.
pub(crate) fn restore_workdir(target: &Path) -> io::Result<(TempDir, fs::File)> {
    let work = TempDir::new_in(parent_of(target), &restore_prefix(target))?;
    let lock = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(work.path().join(RESTORE_LOCK))?;
    // Until it is locked, another restore to the same target may take the directory for a
    // killed restore's and hold the lock while it removes it.
    if !try_lock(&lock) {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "another restore to the same target took the new working directory for a leftover",
        ));
    }
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(work.path().join(RESTORE_TREE))?;
    Ok((work, lock))
}

/// A backup file being written under the temporary name `.<name>.XXXXXX.partial` in its
/// destination directory ([`crate::fs::TempFile`]: locked and registered while it lives).
///
/// Dropping it deletes the temporary file; [`PendingFile::commit`] fsyncs it and renames it to
/// its final name (never replacing an existing file), then fsyncs the directory.
pub(crate) struct PendingFile {
    tmp: TempFile,
}

impl PendingFile {
    /// Removes what killed backups to `dest` left, refuses an existing `dest`, and creates the
    /// temporary file.
    pub(crate) fn create(dest: &Path) -> Result<Self, BackupError> {
        let io_err = |source| BackupError::Io {
            path: dest.to_path_buf(),
            source,
        };
        if let Some(prefix) = temp_prefix(dest) {
            remove_stale(parent_of(dest), &prefix, PARTIAL_SUFFIX);
        }
        if exists(dest) {
            return Err(BackupError::DestinationExists {
                path: dest.to_path_buf(),
            });
        }
        let tmp = TempFile::beside(dest, PARTIAL_SUFFIX).map_err(io_err)?;
        Ok(Self { tmp })
    }

    pub(crate) fn commit(self) -> Result<(), BackupError> {
        let dest = self.tmp.dest().to_path_buf();
        self.tmp.commit(Replace::Never).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                BackupError::DestinationExists { path: dest }
            } else {
                BackupError::Io { path: dest, source }
            }
        })
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Payload writer: optional zstd, then the backup stream, then the pending file.
pub(crate) enum Sink {
    Plain(BackupWriter<PendingFile>),
    Zstd(zstd::stream::write::Encoder<'static, BackupWriter<PendingFile>>),
}

impl Sink {
    pub(crate) fn new(
        stream: BackupWriter<PendingFile>,
        compression: Compression,
        dest: &Path,
    ) -> Result<Self, BackupError> {
        Ok(match compression {
            Compression::None => Sink::Plain(stream),
            Compression::Zstd => Sink::Zstd(
                zstd::stream::write::Encoder::new(stream, ZSTD_LEVEL)
                    .map_err(|e| io_error(e, dest))?,
            ),
        })
    }

    /// Ends the compression frame and the stream, then publishes the file.
    pub(crate) fn finish(self, dest: &Path) -> Result<(), BackupError> {
        let stream = match self {
            Sink::Plain(stream) => stream,
            Sink::Zstd(encoder) => encoder.finish().map_err(|e| io_error(e, dest))?,
        };
        stream.finish().map_err(|e| from_stream(e, dest))?.commit()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

/// A stream error met while writing or reading `path`.
pub(crate) fn from_stream(err: StreamError, path: &Path) -> BackupError {
    match err {
        StreamError::Io(source) => BackupError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => BackupError::from(other),
    }
}

/// An `io::Error` met while writing or reading `path`: a wrapped stream error, or a file error.
pub(crate) fn io_error(err: io::Error, path: &Path) -> BackupError {
    if StreamError::from_io(&err).is_some() {
        let inner = err
            .into_inner()
            .and_then(|e| e.downcast::<StreamError>().ok())
            .expect("checked above");
        from_stream(*inner, path)
    } else {
        BackupError::Io {
            path: path.to_path_buf(),
            source: err,
        }
    }
}

/// Where a [`Tap`] keeps the first error of the reader it wraps.
pub(crate) type TapSlot = Rc<RefCell<Option<io::Error>>>;

/// Remembers the first error of the reader it wraps, so that a failure reported by a layer above
/// (zstd, tar) can be attributed: to the stream or the file if this reader failed, to the
/// payload's format otherwise ([`Place::read_error`](super::input::Place::read_error)).
pub(crate) struct Tap<R> {
    inner: R,
    failed: TapSlot,
}

impl<R> Tap<R> {
    pub(crate) fn new(inner: R) -> (Self, TapSlot) {
        let failed = Rc::new(RefCell::new(None));
        (
            Self {
                inner,
                failed: Rc::clone(&failed),
            },
            failed,
        )
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let kind = e.kind();
                self.failed.borrow_mut().get_or_insert(e);
                Err(io::Error::new(kind, "reading the backup stream failed"))
            }
            other => other,
        }
    }
}
