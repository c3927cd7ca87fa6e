//! Snapshot members read from a reader (`SnapshotBackup::with_entry`): they restore
//! byte-identical beside the files; a reader that ends early or goes on past its length, and a
//! name the path rule or another member refuses, fail the backup and leave no output.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongbox::backup::{BackupError, Channel, MasterKeys, RestoreConfig, restore};
use strongbox::keys::FileProvider;
use strongbox::{DatabaseKeyStore, SnapshotBackup};

mod common;
use common::{noise, tree};

const AUTH: Channel = Channel::Authenticated;

/// A database with a key and one file, under a master-key file; backups go to `out`.
struct Fx {
    tmp: tempfile::TempDir,
    keys: MasterKeys,
    db: PathBuf,
}

impl Fx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let master = Arc::new(FileProvider::create_new(tmp.path().join("master.key")).unwrap());
        let db = tmp.path().join("orders");
        fs::create_dir_all(db.join("data")).unwrap();
        fs::write(db.join("data/0001.db"), noise(70_000, 1)).unwrap();
        DatabaseKeyStore::new(master.clone()).create(&db).unwrap();
        fs::create_dir(tmp.path().join("out")).unwrap();
        Self {
            keys: MasterKeys::new(master),
            tmp,
            db,
        }
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    /// Writes `snapshot` to `out/backup`.
    fn write(&self, snapshot: SnapshotBackup<'_>) -> Result<PathBuf, BackupError> {
        let dest = self.out().join("backup");
        snapshot.write(&dest, &self.keys, AUTH)?;
        Ok(dest)
    }

    /// The names in `out` (the backup and any temporary).
    fn out_names(&self) -> Vec<String> {
        fs::read_dir(self.out())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

/// A reader that hands out its bytes a few at a time, as a socket or a pipe does.
struct Trickle(io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1000);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn reader_entries_restore_byte_identical_beside_the_files() {
    let fx = Fx::new();
    let copy = noise(200_000, 7);
    let small = b"a small member".to_vec();
    let long_name = format!("deep/{}/member", "n".repeat(150));
    let backup = fx
        .write(
            SnapshotBackup::of_directory(&fx.db)
                .with_entry("copy.db", copy.len() as u64, &copy[..])
                .with_entry(
                    &long_name,
                    small.len() as u64,
                    Trickle(io::Cursor::new(small.clone())),
                )
                .with_entry("empty", 0, io::empty()),
        )
        .unwrap();
    let restored = fx.tmp.path().join("restored");
    restore(&RestoreConfig::new([&backup], &restored), &fx.keys, AUTH).unwrap();

    let mut expected = vec![
        (PathBuf::from("copy.db"), copy),
        (PathBuf::from("data/0001.db"), noise(70_000, 1)),
        (PathBuf::from(long_name), small),
        (PathBuf::from("empty"), Vec::new()),
    ];
    expected.sort();
    let mut got = tree(&restored);
    got.retain(|(p, _)| p != Path::new("secret.key.encrypted"));
    assert_eq!(got, expected);
}

#[test]
fn a_reader_shorter_or_longer_than_its_length_leaves_no_output() {
    let fx = Fx::new();
    let bytes = noise(100_000, 3);
    for (reader_len, given) in [(99_999, 100_000), (100_001, 100_000), (1, 0), (0, 1)] {
        let err = fx
            .write(
                SnapshotBackup::of_directory(&fx.db).with_entry(
                    "copy.db",
                    given,
                    Trickle(io::Cursor::new(
                        bytes[..reader_len.min(bytes.len())].to_vec(),
                    ))
                    .chain(io::repeat(9).take(reader_len.saturating_sub(bytes.len()) as u64)),
                ),
            )
            .unwrap_err();
        assert!(
            matches!(&err, BackupError::EntryLength { path, len } if path == Path::new("copy.db") && *len == given),
            "{reader_len} bytes for {given}: {err:?}"
        );
        assert_eq!(
            fx.out_names(),
            Vec::<String>::new(),
            "{reader_len} for {given}"
        );
    }
}

#[test]
fn a_short_reader_into_a_writer_is_the_same_error() {
    let fx = Fx::new();
    let mut upload = Vec::new();
    let err = SnapshotBackup::of_files(&fx.db, ["data/0001.db"])
        .with_entry("copy.db", 10, &b"short"[..])
        .write_to(&mut upload, &fx.keys, AUTH)
        .unwrap_err();
    assert!(
        matches!(err, BackupError::EntryLength { len: 10, .. }),
        "{err:?}"
    );
}

#[test]
fn names_the_path_rule_or_another_member_has_are_refused() {
    let fx = Fx::new();
    let refused = |snapshot: SnapshotBackup<'_>, name: &str| {
        let err = fx.write(snapshot).unwrap_err();
        assert!(
            matches!(&err, BackupError::UnsupportedSource { path, .. } if path == Path::new(name)),
            "{name}: {err:?}"
        );
        assert_eq!(fx.out_names(), Vec::<String>::new(), "{name}");
    };
    for name in [
        "../escape",
        "/etc/passwd",
        "",
        ".",
        "a/../b",
        "secret.key.encrypted",
        "./Secret.Key.Encrypted",
        ".secret.key.lock",
        ".secret.key.encrypted.Ab3dE9.tmp",
    ] {
        refused(
            SnapshotBackup::of_directory(&fx.db).with_entry(name, 1, &b"x"[..]),
            name,
        );
    }
    // Taken in the directory packed whole: the file itself, or a file above the name.
    for name in ["data/0001.db", "./data//0001.db", "data/0001.db/below"] {
        refused(
            SnapshotBackup::of_directory(&fx.db).with_entry(name, 1, &b"x"[..]),
            name,
        );
    }
    // Taken by a listed file.
    refused(
        SnapshotBackup::of_files(&fx.db, ["data/0001.db"]).with_entry("data/0001.db", 1, &b"x"[..]),
        "data/0001.db",
    );
    // Taken by another entry: the same name, a name below it, or its directory.
    let twice = |first: &str, second: &'static str| {
        SnapshotBackup::of_files(&fx.db, Vec::<&str>::new())
            .with_entry(first.to_owned(), 1, &b"x"[..])
            .with_entry(second, 1, &b"y"[..])
    };
    refused(twice("copy.db", "./copy.db"), "./copy.db");
    refused(twice("copy.db", "copy.db/below"), "copy.db/below");
    refused(twice("dir/copy.db", "dir"), "dir");
}

#[test]
fn a_name_below_a_directory_of_the_database_is_accepted() {
    let fx = Fx::new();
    let backup = fx
        .write(SnapshotBackup::of_directory(&fx.db).with_entry("data/0002.db", 3, &b"abc"[..]))
        .unwrap();
    let restored = fx.tmp.path().join("restored");
    restore(&RestoreConfig::new([&backup], &restored), &fx.keys, AUTH).unwrap();
    assert_eq!(fs::read(restored.join("data/0002.db")).unwrap(), b"abc");
}
