//! Snapshot payload: a tar archive (ustar with GNU long names) of a database directory or of an
//! explicit list of its files, written and read in constant memory.
//!
//! Packing stores only directories and regular files, under relative paths, in a stable order.
//! Unpacking accepts only directories and regular files whose paths are relative and free of
//! `..`, creates every file exclusively (a duplicate entry is an error) and never follows or
//! creates a link, so an archive cannot write outside the directory it is unpacked into.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use tar::{Archive, Builder, EntryType, Header};

/// The protected database key file is never packed: the key travels wrapped in the backup
/// header and a restore writes a fresh key file (see `docs/BACKUP.md`).
pub(crate) use crate::KEY_FILE_NAME;

/// Why packing failed.
#[derive(Debug)]
pub(crate) enum PackError {
    /// Reading a source file or directory failed.
    Source { path: PathBuf, source: io::Error },
    /// A source entry is neither a regular file nor a directory (a symlink, socket, ...), or a
    /// listed path is not a relative path inside the database directory.
    Unsupported { path: PathBuf, reason: &'static str },
    /// A file's length changed while it was being read.
    Changed { path: PathBuf },
    /// Writing the archive failed.
    Write(io::Error),
}

/// Why unpacking failed.
#[derive(Debug)]
pub(crate) enum UnpackError {
    /// Reading the archive failed: either the stream below failed (the caller knows) or the tar
    /// parser rejected the bytes.
    Read(io::Error),
    /// Creating or writing a file in the target failed.
    Write { path: PathBuf, source: io::Error },
    /// The archive is not a snapshot this crate accepts.
    Malformed(String),
}

/// What to pack.
pub(crate) enum Selection<'a> {
    /// Every file and directory below the root, except the key file at its top.
    Directory,
    /// These files, given relative to the root (their directories are implied).
    Files(&'a [PathBuf]),
}

/// Counts of what was packed or unpacked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

/// Packs `root` into a tar archive written to `out`; returns `out` after the end-of-archive
/// marker.
pub(crate) fn pack<W: Write>(
    root: &Path,
    selection: Selection<'_>,
    out: W,
) -> Result<(W, Totals), PackError> {
    let mut builder = Builder::new(out);
    let mut totals = Totals::default();
    match selection {
        Selection::Directory => pack_dir(&mut builder, root, Path::new(""), &mut totals)?,
        Selection::Files(files) => {
            for rel in files {
                check_relative(rel).map_err(|reason| PackError::Unsupported {
                    path: rel.clone(),
                    reason,
                })?;
                let path = root.join(rel);
                let meta = fs::symlink_metadata(&path).map_err(|source| PackError::Source {
                    path: path.clone(),
                    source,
                })?;
                if !meta.is_file() {
                    return Err(PackError::Unsupported {
                        path,
                        reason: "not a regular file",
                    });
                }
                pack_file(&mut builder, &path, rel, &meta, &mut totals)?;
            }
        }
    }
    builder.finish().map_err(PackError::Write)?;
    let out = builder.into_inner().map_err(PackError::Write)?;
    Ok((out, totals))
}

fn pack_dir<W: Write>(
    builder: &mut Builder<W>,
    dir: &Path,
    rel: &Path,
    totals: &mut Totals,
) -> Result<(), PackError> {
    let source = |source| PackError::Source {
        path: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<OsString> = fs::read_dir(dir)
        .map_err(source)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(source)?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        if crate::store::is_key_store_file(&rel) {
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(|source| PackError::Source {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut header = Header::new_gnu();
            header.set_entry_type(EntryType::Directory);
            header.set_size(0);
            header.set_mode(0o700);
            header.set_mtime(mtime(&meta));
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(PackError::Write)?;
            pack_dir(builder, &path, &rel, totals)?;
        } else if meta.is_file() {
            pack_file(builder, &path, &rel, &meta, totals)?;
        } else {
            return Err(PackError::Unsupported {
                path,
                reason: "neither a regular file nor a directory (symbolic links, sockets and \
                         devices are not backed up)",
            });
        }
    }
    Ok(())
}

fn pack_file<W: Write>(
    builder: &mut Builder<W>,
    path: &Path,
    rel: &Path,
    meta: &fs::Metadata,
    totals: &mut Totals,
) -> Result<(), PackError> {
    let file = File::open(path).map_err(|source| PackError::Source {
        path: path.to_path_buf(),
        source,
    })?;
    let len = meta.len();
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_size(len);
    header.set_mode(0o600);
    header.set_mtime(mtime(meta));
    let mut reader = Exact {
        inner: file.take(len),
        remaining: len,
        failed: None,
    };
    let written = builder.append_data(&mut header, rel, &mut reader);
    if let Some(source) = reader.failed.take() {
        return Err(if source.kind() == io::ErrorKind::UnexpectedEof {
            PackError::Changed {
                path: path.to_path_buf(),
            }
        } else {
            PackError::Source {
                path: path.to_path_buf(),
                source,
            }
        });
    }
    written.map_err(PackError::Write)?;
    totals.files += 1;
    totals.bytes += len;
    Ok(())
}

fn mtime(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Reads exactly `remaining` bytes from a file, remembering a read failure apart from write
/// failures (the tar builder reports both as `io::Error`).
struct Exact {
    inner: io::Take<File>,
    remaining: u64,
    failed: Option<io::Error>,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let result = match self.inner.read(buf) {
            Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            other => other,
        };
        match result {
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.failed = Some(e);
                Err(io::Error::new(kind, "reading a source file failed"))
            }
        }
    }
}

/// Checks that a listed or archived path is relative, non-empty and has no `..`, root or prefix
/// component.
fn check_relative(path: &Path) -> Result<(), &'static str> {
    let mut any = false;
    for component in path.components() {
        match component {
            Component::Normal(_) => any = true,
            Component::CurDir => {}
            Component::ParentDir => return Err("the path contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("the path is absolute"),
        }
    }
    if any {
        Ok(())
    } else {
        Err("the path is empty")
    }
}

/// Unpacks a tar archive into `dest`, an existing empty directory; returns the reader positioned
/// after the end-of-archive marker.
pub(crate) fn unpack<R: Read>(input: R, dest: &Path) -> Result<(R, Totals), UnpackError> {
    let mut archive = Archive::new(input);
    let mut totals = Totals::default();
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        let rel = entry
            .path()
            .map_err(|_| UnpackError::Malformed("an entry has an invalid path".into()))?
            .into_owned();
        check_relative(&rel).map_err(|reason| {
            UnpackError::Malformed(format!("entry {}: {reason}", rel.display()))
        })?;
        if rel == Path::new(KEY_FILE_NAME) {
            return Err(UnpackError::Malformed(format!(
                "the archive holds {KEY_FILE_NAME}, which snapshots never contain"
            )));
        }
        let path = dest.join(&rel);
        let write_err = |source| UnpackError::Write {
            path: path.clone(),
            source,
        };
        match entry.header().entry_type() {
            EntryType::Directory => match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(e) => return Err(write_err(e)),
            },
            EntryType::Regular | EntryType::Continuous => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(write_err)?;
                }
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| {
                        if e.kind() == io::ErrorKind::AlreadyExists {
                            UnpackError::Malformed(format!("entry {} appears twice", rel.display()))
                        } else {
                            write_err(e)
                        }
                    })?;
                let len = copy(&mut entry, &mut file, &path)?;
                file.sync_all().map_err(write_err)?;
                totals.files += 1;
                totals.bytes += len;
            }
            other => {
                return Err(UnpackError::Malformed(format!(
                    "entry {} has unsupported type {other:?}",
                    rel.display()
                )));
            }
        }
    }
    Ok((archive.into_inner(), totals))
}

/// Copies an entry's bytes, keeping read errors (the stream's) apart from write errors.
fn copy(from: &mut impl Read, to: &mut File, path: &Path) -> Result<u64, UnpackError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::Read(e)),
        };
        to.write_all(&buf[..n])
            .map_err(|source| UnpackError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b/c")).unwrap();
        fs::create_dir_all(root.join("empty-dir")).unwrap();
        fs::write(root.join("top.db"), b"top").unwrap();
        fs::write(root.join("a/b/c/deep.bin"), vec![9u8; 70_000]).unwrap();
        fs::write(root.join("a/empty"), b"").unwrap();
        let long = "n".repeat(120);
        fs::write(root.join("a").join(&long), b"long name").unwrap();
        fs::write(root.join(KEY_FILE_NAME), b"not packed").unwrap();
        dir
    }

    fn listing(root: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            for e in fs::read_dir(root.join(&rel)).unwrap() {
                let e = e.unwrap();
                let r = rel.join(e.file_name());
                if e.file_type().unwrap().is_dir() {
                    out.push((r.clone(), None));
                    stack.push(r);
                } else {
                    out.push((r.clone(), Some(fs::read(root.join(&r)).unwrap())));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn directory_round_trip_skips_the_key_file() {
        let src = tree();
        let (bytes, totals) = pack(src.path(), Selection::Directory, Vec::new()).unwrap();
        assert_eq!(totals.files, 4);
        let dst = tempfile::tempdir().unwrap();
        let (rest, back) = unpack(&bytes[..], dst.path()).unwrap();
        assert_eq!(back, totals);
        assert!(rest.iter().all(|&b| b == 0));
        let mut expected = listing(src.path());
        expected.retain(|(p, _)| p != Path::new(KEY_FILE_NAME));
        assert_eq!(listing(dst.path()), expected);
    }

    #[test]
    fn file_list_round_trip() {
        let src = tree();
        let files = [PathBuf::from("a/b/c/deep.bin"), PathBuf::from("top.db")];
        let (bytes, _) = pack(src.path(), Selection::Files(&files), Vec::new()).unwrap();
        let dst = tempfile::tempdir().unwrap();
        unpack(&bytes[..], dst.path()).unwrap();
        let got: Vec<_> = listing(dst.path())
            .into_iter()
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, vec![PathBuf::from("a/b/c/deep.bin"), "top.db".into()]);
    }

    #[test]
    fn bad_listed_paths_are_refused() {
        let src = tree();
        for bad in ["../x", "/etc/passwd", "", "a/b"] {
            let files = [PathBuf::from(bad)];
            let err = pack(src.path(), Selection::Files(&files), Vec::new()).unwrap_err();
            assert!(
                matches!(err, PackError::Unsupported { .. }),
                "{bad}: {err:?}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_when_packing() {
        let src = tree();
        std::os::unix::fs::symlink("/etc", src.path().join("link")).unwrap();
        assert!(matches!(
            pack(src.path(), Selection::Directory, Vec::new()),
            Err(PackError::Unsupported { .. })
        ));
    }

    /// Builds an archive by hand, with raw names the builder would refuse.
    fn raw_archive(entries: &[(&[u8], EntryType, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, data) in entries {
            let mut h = Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            if *kind == EntryType::Symlink {
                h.set_link_name("/etc").unwrap();
            }
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let cases: Vec<Vec<u8>> = vec![
            raw_archive(&[(b"../escape", EntryType::Regular, b"x")]),
            raw_archive(&[(b"/abs", EntryType::Regular, b"x")]),
            raw_archive(&[(b"ok/../../escape", EntryType::Regular, b"x")]),
            raw_archive(&[(b"link", EntryType::Symlink, b"")]),
            raw_archive(&[(b"hard", EntryType::Link, b"")]),
            raw_archive(&[
                (b"dup", EntryType::Regular, b"1"),
                (b"dup", EntryType::Regular, b"2"),
            ]),
            raw_archive(&[(b"secret.key.encrypted", EntryType::Regular, b"k")]),
            b"definitely not a tar archive, but 512 bytes of it"
                .iter()
                .copied()
                .cycle()
                .take(1024)
                .collect(),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let outer = tempfile::tempdir().unwrap();
            let dst = outer.path().join("dst");
            fs::create_dir(&dst).unwrap();
            let err = unpack(&bytes[..], &dst).unwrap_err();
            assert!(
                matches!(err, UnpackError::Malformed(_) | UnpackError::Read(_)),
                "case {i}: {err:?}"
            );
            assert!(!outer.path().join("escape").exists(), "case {i}");
        }
    }
}
