//! File plumbing shared by backups and restores: the backup file that appears only when
//! complete, the compress-then-encrypt writer, and the read side's error attribution.

use std::cell::RefCell;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tempfile::NamedTempFile;

use super::BackupError;
use super::manifest::Compression;
use crate::{BackupWriter, StreamError};

/// zstd level of logical backups (the library's default: fast, good ratio).
const ZSTD_LEVEL: i32 = 3;

/// The parent directory of `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether anything (even a dangling symlink) exists at `path`.
pub(crate) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// fsyncs a directory so that a rename into it is durable (no-op where directories cannot be
/// opened, e.g. Windows).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// How many random characters the temporary names hold (`tempfile`'s: ASCII letters and digits).
const RAND_LEN: usize = 6;
/// Suffix of a backup file being written.
const PARTIAL_SUFFIX: &str = ".partial";
/// Name of the lock file inside a restore's working directory.
const RESTORE_LOCK: &str = "lock";
/// Name of the directory being built inside a restore's working directory.
pub(crate) const RESTORE_TREE: &str = "tree";

/// Prefix of the temporary names of a backup file `dest`: `.<name>.`.
fn partial_prefix(dest: &Path) -> Option<String> {
    Some(format!(".{}.", dest.file_name()?.to_string_lossy()))
}

/// Prefix of the working directories of a restore to `target`: `.<name>.restoring-`.
fn restore_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.restoring-")
}

/// The entries of `dir` named exactly `prefix`, [`RAND_LEN`] ASCII letters or digits, `suffix`.
fn temp_names(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|n| n.strip_suffix(suffix))
                .is_some_and(|r| {
                    r.len() == RAND_LEN && r.bytes().all(|b| b.is_ascii_alphanumeric())
                })
        })
        .map(|e| e.path())
        .collect()
}

/// Takes the exclusive lock of `file` without waiting: `true` if this handle now holds it.
/// `false` if another handle holds it, or the file system has no locks.
fn try_lock(file: &fs::File) -> bool {
    // Through the trait: std's own `File::try_lock` needs a newer Rust than our MSRV.
    matches!(fs4::fs_std::FileExt::try_lock_exclusive(file), Ok(true))
}

/// Whether the regular file at `path` exists and nobody holds its lock: its writer is gone.
fn abandoned(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => fs::File::open(path).is_ok_and(|f| try_lock(&f)),
        _ => false,
    }
}

/// Removes the temporary files that killed backups to `dest` left beside it: regular files
/// named `.<name>.XXXXXX.partial` whose lock nobody holds (a running backup holds the lock of
/// its file until it ends). Best effort: a file that cannot be removed stays.
fn remove_stale_partials(dest: &Path) {
    let Some(prefix) = partial_prefix(dest) else {
        return;
    };
    for path in temp_names(parent_of(dest), &prefix, PARTIAL_SUFFIX) {
        // The lock is released before the removal: a file's lock is only ever taken by the
        // backup that created it, so a lock once free stays free.
        if abandoned(&path) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Removes the working directories that killed restores to `target` left beside it:
/// directories named `.<name>.restoring-XXXXXX` whose `lock` file nobody holds (a running
/// restore holds it until it ends), and empty ones without a `lock` file (a restore killed
/// before it made one). Best effort: what cannot be removed stays.
pub(crate) fn remove_stale_restores(target: &Path) {
    for dir in temp_names(parent_of(target), &restore_prefix(target), "") {
        if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let lock = dir.join(RESTORE_LOCK);
        if abandoned(&lock) {
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
pub(crate) fn restore_workdir(target: &Path) -> io::Result<(tempfile::TempDir, fs::File)> {
    let work = tempfile::Builder::new()
        .prefix(&restore_prefix(target))
        .rand_bytes(RAND_LEN)
        .tempdir_in(parent_of(target))?;
    let lock = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(work.path().join(RESTORE_LOCK))?;
    try_lock(&lock);
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(work.path().join(RESTORE_TREE))?;
    Ok((work, lock))
}

/// A backup file being written under a temporary name in its destination directory.
///
/// Dropping it deletes the temporary file; [`PendingFile::commit`] fsyncs it and renames it to
/// its final name (never replacing an existing file), then fsyncs the directory. The file is
/// locked while it is written, so that [`remove_stale_partials`] leaves it alone.
pub(crate) struct PendingFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl PendingFile {
    pub(crate) fn create(dest: &Path) -> Result<Self, BackupError> {
        remove_stale_partials(dest);
        if exists(dest) {
            return Err(BackupError::DestinationExists {
                path: dest.to_path_buf(),
            });
        }
        let prefix = partial_prefix(dest).ok_or_else(|| BackupError::Io {
            path: dest.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        })?;
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(PARTIAL_SUFFIX)
            .rand_bytes(RAND_LEN)
            .tempfile_in(parent_of(dest))
            .map_err(|source| BackupError::Io {
                path: dest.to_path_buf(),
                source,
            })?;
        // Without locks (some network file systems) nothing is ever taken for abandoned.
        try_lock(tmp.as_file());
        Ok(Self {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub(crate) fn commit(self) -> Result<(), BackupError> {
        let io_err = |source| BackupError::Io {
            path: self.dest.clone(),
            source,
        };
        self.tmp.as_file().sync_all().map_err(io_err)?;
        let dest = self.dest.clone();
        self.tmp.persist_noclobber(&dest).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                BackupError::DestinationExists { path: dest.clone() }
            } else {
                BackupError::Io {
                    path: dest.clone(),
                    source: e.error,
                }
            }
        })?;
        sync_dir(parent_of(&dest)).map_err(|source| BackupError::Io { path: dest, source })
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
/// payload's format otherwise.
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

/// Attributes a read-side failure: the tapped stream's error if it failed, else a malformed
/// payload described by `what` and the kind of `err`. The text of `err` is left out: the
/// archive and decompression libraries quote the (decrypted) payload bytes they choke on.
pub(crate) fn read_error(
    err: io::Error,
    tap: &RefCell<Option<io::Error>>,
    path: &Path,
    what: &str,
) -> BackupError {
    match tap.borrow_mut().take() {
        Some(stream_err) => io_error(stream_err, path),
        None => BackupError::Malformed(format!("{what} ({})", err.kind())),
    }
}
