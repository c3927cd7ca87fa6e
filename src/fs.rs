//! Durable file operations, in one place: files that appear only when complete (a temporary
//! file in the same directory, locked while it lives, synced, renamed into place, the directory
//! synced), the clean-up of temporaries that killed processes left, key files opened without
//! blocking, and outputs that may be special files.
//!
//! Every temporary file or directory is recorded in a process-wide registry while it lives, so
//! that a signal handler can remove them all before the process exits
//! ([`exit_removing_temporaries`]). Temporary names are `.<name>.XXXXXX<suffix>` (`XXXXXX`: 6
//! random ASCII letters or digits), where `<name>` is the final name cut to at most
//! [`MAX_NAME_IN_TEMP`] bytes, so that any final name of up to 255 bytes has a temporary name of
//! at most 255 bytes; [`OutputFile`]'s are `.strongbox-XXXXXX.partial`. Errors name the final
//! path, never the temporary one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tempfile::NamedTempFile;

/// How many random characters temporary names hold.
const RAND_LEN: usize = 6;

/// Most bytes of the final name kept in a temporary name (255 − `.` − `.` − 6 random characters
/// − a suffix of up to 16 bytes).
pub const MAX_NAME_IN_TEMP: usize = 230;

/// Temporary files and directories alive in this process (`true`: a directory).
static LIVE: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<(PathBuf, bool)>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unregister(registry: &mut Vec<(PathBuf, bool)>, path: &Path) {
    registry.retain(|(p, _)| p != path);
}

/// Removes every temporary file and directory this process has alive, then exits with `code`
/// (for a signal handler: `128 +` the signal's number). No temporary is renamed into place once
/// this has started: a commit in progress either finished before, or never happens.
pub fn exit_removing_temporaries(code: i32) -> ! {
    let registry = live();
    for (path, is_dir) in registry.iter() {
        let _ = if *is_dir {
            // The process's other threads run on meanwhile: a file made inside the directory
            // while it is removed can make one pass fail ("not empty"); they cannot make a
            // directory that is gone appear again (see `backup`'s unpacking).
            for _ in 0..4 {
                match fs::remove_dir_all(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {}
                    _ => break,
                }
            }
            Ok(())
        } else {
            fs::remove_file(path)
        };
    }
    std::process::exit(code)
}

/// The directory a file is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// fsyncs a directory so that a rename into it is durable (no-op where directories cannot be
/// opened, e.g. Windows).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Opens a file for reading only if it is a regular file (following symbolic links): a FIFO,
/// a device, a socket or a directory is refused with [`io::ErrorKind::InvalidInput`] ("not a
/// regular file") and opening never blocks (on Unix it is checked before the open, and the open
/// itself is non-blocking and does not take a terminal).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let not_regular = || io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
    if !fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY)
            .bits()
            .cast_signed(),
    );
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// The prefix of the temporary names for the final path `dest`: `.<name>.`, with `<name>` cut
/// to [`MAX_NAME_IN_TEMP`] bytes (at a character boundary). `None` for a path without a name.
pub(crate) fn temp_prefix(dest: &Path) -> Option<String> {
    let name = dest.file_name()?.to_string_lossy();
    let mut end = name.len().min(MAX_NAME_IN_TEMP);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!(".{}.", &name[..end]))
}

/// The entries of `dir` named exactly `prefix`, 6 ASCII letters or digits, `suffix`.
pub(crate) fn temp_names(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
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
/// `false` if another handle holds it, or the file system has no locks. The lock is `flock(2)`
/// on Unix and `LockFileEx` over the whole file on Windows.
pub(crate) fn try_lock(file: &File) -> bool {
    file.try_lock().is_ok()
}

/// Takes the exclusive lock of `file`, waiting for it.
pub(crate) fn lock(file: &File) -> io::Result<()> {
    loop {
        match file.lock() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Releases the lock of `file` (closing it releases it too; this only makes it prompt).
pub(crate) fn unlock(file: &File) {
    let _ = file.unlock();
}

/// The regular file at `path`, locked, if it exists and nobody held its lock: its writer is
/// gone. Whoever removes what the lock guards does so while holding the returned handle, so that
/// no other process can take the lock in between.
pub(crate) fn abandoned(path: &Path) -> Option<File> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => open_regular(path).ok().filter(try_lock),
        _ => None,
    }
}

/// Removes the regular files of `dir` named `prefix`, 6 random characters, `suffix` whose lock
/// nobody holds (their writer is gone; a live [`TempFile`] holds its lock). Best effort: a file
/// that cannot be removed stays.
pub(crate) fn remove_stale(dir: &Path, prefix: &str, suffix: &str) {
    let registry = live();
    for path in temp_names(dir, prefix, suffix) {
        if registry.iter().any(|(p, _)| *p == path) {
            continue;
        }
        // A file's lock is only ever taken by the process that created it, so a lock once free
        // stays free.
        if let Some(_held) = abandoned(&path) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Whether a commit may replace an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Fail with [`io::ErrorKind::AlreadyExists`] if the final name exists.
    Never,
    /// Replace whatever file has the final name.
    Always,
}

/// A temporary file (owner-only, created exclusively) in the directory of its final path,
/// locked and registered while it lives; dropped uncommitted, it is deleted.
pub(crate) struct TempFile {
    tmp: Option<NamedTempFile>,
    dest: PathBuf,
}

impl TempFile {
    /// A temporary file `.<name>.XXXXXX<suffix>` beside `dest`.
    #[cfg(feature = "backup")]
    pub(crate) fn beside(dest: &Path, suffix: &str) -> io::Result<Self> {
        let prefix = temp_prefix(dest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        Self::named(dest, &prefix, suffix)
    }

    /// A temporary file `<prefix>XXXXXX<suffix>` beside `dest`.
    /// Another process may take the file for abandoned between its creation and its lock, and
    /// remove it: then another name is tried.
    pub(crate) fn named(dest: &Path, prefix: &str, suffix: &str) -> io::Result<Self> {
        let mut registry = live();
        for _ in 0..16 {
            let tmp = tempfile::Builder::new()
                .prefix(prefix)
                .suffix(suffix)
                .rand_bytes(RAND_LEN)
                .tempfile_in(parent_dir(dest))?;
            // Without locks (some network file systems) nothing is ever taken for abandoned.
            try_lock(tmp.as_file());
            if still_named(&tmp)? {
                registry.push((tmp.path().to_path_buf(), false));
                return Ok(Self {
                    tmp: Some(tmp),
                    dest: dest.to_path_buf(),
                });
            }
        }
        Err(io::Error::other(
            "temporary files keep disappearing from the directory",
        ))
    }

    /// The open temporary file.
    pub(crate) fn file(&self) -> &File {
        self.tmp
            .as_ref()
            .expect("present until commit or drop")
            .as_file()
    }

    /// The final path.
    #[cfg(feature = "backup")]
    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }

    /// fsyncs the file, renames it to its final path and fsyncs the directory.
    pub(crate) fn commit(mut self, replace: Replace) -> io::Result<()> {
        self.file().sync_all()?;
        let tmp = self.tmp.take().expect("present until commit or drop");
        {
            let mut registry = live();
            unregister(&mut registry, tmp.path());
            let persisted = match replace {
                Replace::Never => tmp.persist_noclobber(&self.dest),
                Replace::Always => tmp.persist(&self.dest),
            };
            persisted.map_err(|e| e.error)?;
        }
        sync_dir(parent_dir(&self.dest))
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self.file();
        file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut file = self.file();
        file.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let mut registry = live();
            unregister(&mut registry, tmp.path());
            drop(tmp);
        }
    }
}

/// Whether the path of `tmp` still names the file `tmp` holds open.
fn still_named(tmp: &NamedTempFile) -> io::Result<bool> {
    #[cfg(unix)]
    {
        let held = tmp.as_file().metadata()?;
        match fs::symlink_metadata(tmp.path()) {
            Ok(named) => Ok(same_file(&named, &held)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tmp;
        Ok(true)
    }
}

/// Writes `bytes` to a new file at `path` (owner-only on Unix), atomically: the file appears
/// complete or not at all, and never replaces anything ([`io::ErrorKind::AlreadyExists`] if
/// something has the name). The temporary file is `.<name>.XXXXXX.tmp`.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, bytes, Replace::Never)
}

/// Writes `bytes` to `path` through a temporary `.<name>.XXXXXX.tmp` beside it (owner-only),
/// removing stale temporaries of that pattern first.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], replace: Replace) -> io::Result<()> {
    let prefix = temp_prefix(path)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    remove_stale(parent_dir(path), &prefix, TMP_SUFFIX);
    let mut tmp = TempFile::named(path, &prefix, TMP_SUFFIX)?;
    tmp.write_all(bytes)?;
    tmp.commit(replace)
}

/// Suffix of the temporary files of [`write_new`] and of the key store.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// A temporary directory `<prefix>XXXXXX` in `dir`, registered while it lives (removed with
/// everything in it when dropped or on [`exit_removing_temporaries`]).
#[cfg(feature = "backup")]
pub(crate) struct TempDir {
    dir: Option<tempfile::TempDir>,
}

#[cfg(feature = "backup")]
impl TempDir {
    pub(crate) fn new_in(dir: &Path, prefix: &str) -> io::Result<Self> {
        let mut registry = live();
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .rand_bytes(RAND_LEN)
            .tempdir_in(dir)?;
        registry.push((dir.path().to_path_buf(), true));
        Ok(Self { dir: Some(dir) })
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }

    /// Renames `from` (inside this directory) to `to` (not while [`exit_removing_temporaries`]
    /// runs). The caller fsyncs the parent of `to`.
    pub(crate) fn rename_out(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _registry = live();
        fs::rename(from, to)
    }
}

#[cfg(feature = "backup")]
impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let mut registry = live();
            unregister(&mut registry, dir.path());
            drop(dir);
        }
    }
}

/// Prefix of the temporary names of [`OutputFile`].
const OUTPUT_PREFIX: &str = ".strongbox-";
/// Suffix of the temporary names of [`OutputFile`].
const OUTPUT_SUFFIX: &str = ".partial";

/// An output file, as a careful user of `cp` or `cat` expects it:
///
/// - a new name, or an existing regular file, is written as a temporary file
///   `.strongbox-XXXXXX.partial` beside it (owner-only, locked) and renamed over it by
///   [`OutputFile::commit`]: the file appears complete or not at all. An existing file keeps its
///   mode (and, where the process may set it, its owner and group). A read-only file, and a file
///   with more than one hard link (replacing it would part it from its other names), are refused.
/// - a symbolic link is followed: its target is what is written (replaced as above); a link to
///   nothing is refused.
/// - anything else that exists (a FIFO, a character or block device, a path naming an open
///   descriptor such as `/dev/stdout` or `/proc/self/fd/N`) is opened and written in place,
///   never renamed over: what is written is visible as it is written, and a failure leaves
///   what was written so far (a regular file reached through a descriptor path is appended to).
///   Opening a FIFO waits for its reader, as `cat > fifo` does; the reader sees end-of-file when
///   the output is dropped.
///
/// Before creating its temporary file it removes the temporaries of its pattern in that
/// directory whose lock is free (left by killed processes).
pub struct OutputFile {
    kind: OutputKind,
}

enum OutputKind {
    Replace {
        tmp: TempFile,
        replaces: Option<Box<fs::Metadata>>,
    },
    InPlace {
        file: File,
        meta: Box<fs::Metadata>,
    },
}

impl OutputFile {
    /// Prepares the output `path` (see the type's description for which files are refused).
    pub fn create(path: &Path) -> io::Result<Self> {
        if names_descriptor(path) {
            return Self::in_place(path);
        }
        let target = follow_link(path)?;
        match fs::metadata(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::replacing(&target, None),
            Err(e) => Err(e),
            Ok(meta) if meta.is_dir() => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            )),
            Ok(meta) if meta.is_file() => {
                check_replaceable(&target, &meta)?;
                Self::replacing(&target, Some(Box::new(meta)))
            }
            Ok(_) => Self::in_place(&target),
        }
    }

    fn replacing(target: &Path, replaces: Option<Box<fs::Metadata>>) -> io::Result<Self> {
        remove_stale(parent_dir(target), OUTPUT_PREFIX, OUTPUT_SUFFIX);
        let tmp = TempFile::named(target, OUTPUT_PREFIX, OUTPUT_SUFFIX)?;
        Ok(Self {
            kind: OutputKind::Replace { tmp, replaces },
        })
    }

    fn in_place(path: &Path) -> io::Result<Self> {
        let is_file = fs::metadata(path)?.is_file();
        let mut options = OpenOptions::new();
        options.write(true).append(is_file);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            rustix::fs::OFlags::NOCTTY.bits().cast_signed(),
        );
        let file = options.open(path)?;
        let meta = Box::new(file.metadata()?);
        Ok(Self {
            kind: OutputKind::InPlace { file, meta },
        })
    }

    /// Whether the output is written in place (not a regular file replaced atomically).
    pub fn is_in_place(&self) -> bool {
        matches!(self.kind, OutputKind::InPlace { .. })
    }

    /// Whether `file` is the file this output writes or replaces (same device and inode; always
    /// `false` where that cannot be told).
    pub fn is_same_file(&self, file: &File) -> io::Result<bool> {
        if !cfg!(unix) {
            return Ok(false);
        }
        let meta = match &self.kind {
            OutputKind::Replace { replaces: None, .. } => return Ok(false),
            OutputKind::Replace {
                replaces: Some(meta),
                ..
            }
            | OutputKind::InPlace { meta, .. } => meta,
        };
        Ok(same_file(meta, &file.metadata()?))
    }

    /// Flushes the output; a temporary file is synced and renamed over its final path (with
    /// the replaced file's mode), and the directory synced.
    pub fn commit(self) -> io::Result<()> {
        match self.kind {
            OutputKind::InPlace { mut file, .. } => file.flush(),
            OutputKind::Replace { tmp, replaces } => {
                if let Some(meta) = replaces {
                    keep_attributes(tmp.file(), &meta);
                }
                tmp.commit(Replace::Always)
            }
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.kind {
            OutputKind::Replace { tmp, .. } => tmp.write(buf),
            OutputKind::InPlace { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.kind {
            OutputKind::Replace { tmp, .. } => tmp.write_all(buf),
            OutputKind::InPlace { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            OutputKind::Replace { tmp, .. } => tmp.flush(),
            OutputKind::InPlace { file, .. } => file.flush(),
        }
    }
}

/// Whether `path` names an open descriptor: `/dev/stdin`, `/dev/stdout`, `/dev/stderr`, a path
/// under `/dev/fd/`, or `/proc/<self or pid>/fd/<n>`.
fn names_descriptor(path: &Path) -> bool {
    ["/dev/stdin", "/dev/stdout", "/dev/stderr"]
        .iter()
        .any(|p| path == Path::new(p))
        || path.starts_with("/dev/fd")
        || is_proc_fd(path)
}

/// `/proc/<self or pid>/fd/<n>`: a process's open descriptor (other paths under `/proc`, such
/// as `/proc/self/cwd/...`, are ordinary files reached through a link).
fn is_proc_fd(path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix("/proc") else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<_> = rest.components().map(|c| c.as_os_str().to_str()).collect();
    match parts[..] {
        [Some(pid), Some("fd"), Some(n)] => (pid == "self" || digits(pid)) && digits(n),
        _ => false,
    }
}

/// `path`, or the file its chain of symbolic links ends at (refused if that does not exist).
fn follow_link(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "a symbolic link to a file that does not exist",
                )
            } else {
                e
            }
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// Refuses to replace a read-only file, a file this process may not write (as `cp` would fail
/// on it, although the directory lets a rename replace it) or a file with other hard links.
fn check_replaceable(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if meta.permissions().readonly() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the file is read-only: refusing to replace it",
        ));
    }
    #[cfg(unix)]
    {
        use rustix::fs::{Access, AtFlags, CWD, accessat};
        if accessat(CWD, path, Access::WRITE_OK, AtFlags::EACCESS).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file is not writable by this user: refusing to replace it",
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    #[cfg(unix)]
    {
        let links = std::os::unix::fs::MetadataExt::nlink(meta);
        if links > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the file has {links} hard links: replacing it would part it from its other \
                     names"
                ),
            ));
        }
    }
    Ok(())
}

/// Gives `file` the mode of `meta` (on Unix without the set-user-id and set-group-id bits, as
/// a write to the file would clear them), and its owner and group where allowed (best effort).
fn keep_attributes(file: &File, meta: &fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
        let mode = meta.permissions().mode() & !0o6000;
        let _ = file.set_permissions(fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = file.set_permissions(meta.permissions());
}

/// Whether two open files are the same file (same device and inode; always `false` where that
/// cannot be told).
pub fn is_same_file(a: &File, b: &File) -> io::Result<bool> {
    // Elsewhere the answer is always `false`: ask for no metadata (Wine has none for a pipe).
    if !cfg!(unix) {
        return Ok(false);
    }
    Ok(same_file(&a.metadata()?, &b.metadata()?))
}

/// Whether two metadata describe the same file (device and inode; `false` where unknown).
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_paths_are_only_the_descriptors_themselves() {
        for path in [
            "/dev/stdout",
            "/dev/fd/1",
            "/proc/self/fd/1",
            "/proc/42/fd/7",
        ] {
            assert!(names_descriptor(Path::new(path)), "{path}");
        }
        for path in [
            "/proc/self/cwd/out",
            "/proc/self/fd",
            "/proc/x/fd/1",
            "/tmp/proc/self/fd/1",
        ] {
            assert!(!names_descriptor(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn temporary_names_of_long_final_names_stay_within_255_bytes() {
        for name in ["a".repeat(255), "é".repeat(127), "x".to_owned()] {
            let prefix = temp_prefix(Path::new(&name)).unwrap();
            assert!(prefix.len() + RAND_LEN + ".partial".len() <= 255, "{name}");
            assert!(name.starts_with(&prefix[1..prefix.len() - 1]), "{name}");
        }
        assert_eq!(
            temp_prefix(Path::new("dir/secret.key")).unwrap(),
            ".secret.key."
        );
        assert_eq!(temp_prefix(Path::new("/")), None);
    }

    #[test]
    fn stale_temporaries_go_live_ones_and_other_names_stay() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let live = TempFile::named(&dest, ".out.", ".partial").unwrap();
        let stale = dir.path().join(".out.AbC123.partial");
        let others = [
            ".out.AbC12.partial",
            ".out.AbC123.partia",
            ".other.AbC123.partial",
        ];
        fs::write(&stale, b"").unwrap();
        for name in others {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        remove_stale(dir.path(), ".out.", ".partial");
        assert!(!stale.exists());
        assert!(live.tmp.as_ref().unwrap().path().exists());
        for name in others {
            assert!(dir.path().join(name).exists(), "{name}");
        }
        drop(live);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), others.len());
    }

    #[test]
    fn a_commit_that_may_not_replace_names_the_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_new(&path, b"first").unwrap();
        let err = write_new(&path, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
