//! The snapshot path rule (`docs/BACKUP.md` section 5), through the public API: hostile tar
//! payloads crafted byte by byte and wrapped as snapshot backups under a provided key are refused
//! as malformed and leave nothing behind; the checked-in `fail_tar_*` vectors hold the same
//! payloads; packing follows the same rule.

mod tar_cases;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongbox::backup::{BackupError, Channel, MasterKeys, RestoreConfig, restore};
use strongbox::keys::{Protection, ProviderError};
use strongbox::stream::Extension;
use strongbox::{
    BackupWriter, DataKey, DatabaseKeyStore, MasterKey, MasterKeyProvider, ProtectedKey,
    RestoreReader, SnapshotBackup, StreamConfig,
};

use tar_cases::{archive, end, entry, pax};

/// A master key held in memory.
#[derive(Debug)]
struct Fixed(MasterKey);

impl MasterKeyProvider for Fixed {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0))
    }
}

fn keys() -> MasterKeys {
    MasterKeys::new(Arc::new(Fixed(MasterKey::generate().unwrap())))
}

fn provided_key() -> DataKey {
    DataKey::from_bytes(&[0x5a; 32]).unwrap()
}

/// Wraps `payload` as a snapshot backup encrypted with the provided `key`, as `docs/BACKUP.md`
/// specifies: a manifest extension and a wrapped copy of the key under the current master key.
fn snapshot_of(payload: &[u8], key: &DataKey, keys: &MasterKeys) -> Vec<u8> {
    let manifest = format!(
        "{{\"version\":1,\"kind\":\"snapshot\",\"backup_id\":\"{}\",\"database\":\"orders\",\
         \"created_unix\":1700000000,\"compression\":\"none\",\"encryption\":\"UseProvidedKey\",\
         \"key_id\":\"{}\",\"previous_backup_id\":null}}",
        "ab".repeat(16),
        key.id()
    );
    let blob = ProtectedKey::protect(key, &**keys.current())
        .unwrap()
        .into_bytes();
    let mut wrapped = vec![1u8];
    wrapped.extend_from_slice(&(blob.len() as u32).to_be_bytes());
    wrapped.extend_from_slice(&blob);
    let extensions = vec![Extension::new(1, manifest), Extension::new(2, wrapped)];
    let mut writer =
        BackupWriter::with_config(Vec::new(), key, &StreamConfig::default(), extensions).unwrap();
    std::io::Write::write_all(&mut writer, payload).unwrap();
    writer.finish().unwrap()
}

/// Restores `backup` with `key` into `dir/restored`; asserts that nothing but `backup` is left
/// in `dir` afterwards when it fails.
fn restore_in(
    dir: &Path,
    backup: &Path,
    key: DataKey,
    keys: &MasterKeys,
) -> Result<(), BackupError> {
    let config = RestoreConfig::new([backup], dir.join("restored")).with_key(key);
    let result = restore(&config, keys, Channel::Authenticated).map(|_| ());
    if result.is_err() {
        let left: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p != backup)
            .collect();
        assert!(left.is_empty(), "a failed restore left {left:?}");
    }
    result
}

fn assert_refused(name: &str, reason: &str, result: Result<(), BackupError>) {
    match result {
        Err(BackupError::Malformed {
            reason: message, ..
        }) => assert!(
            message.contains(reason),
            "{name}: {message:?} does not say {reason:?}"
        ),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn hostile_archives_are_refused_as_malformed_and_leave_nothing() {
    let keys = keys();
    for case in tar_cases::cases() {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("snapshot.sbx");
        fs::write(&backup, snapshot_of(&case.tar, &provided_key(), &keys)).unwrap();
        let result = restore_in(dir.path(), &backup, provided_key(), &keys);
        assert_refused(case.name, case.reason, result);
    }
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/backup")
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Each case is checked in as `fail_tar_<name>.sbx` + `.txt`: its payload is the case's bytes
/// under the vector's key, and restoring it is refused for the same reason.
#[test]
fn the_fail_tar_vectors_hold_the_cases() {
    let keys = keys();
    for case in tar_cases::cases() {
        let name = format!("fail_tar_{}", case.name);
        let text = fs::read_to_string(vectors().join(format!("{name}.txt"))).unwrap();
        let field = |label: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(label))
                .unwrap_or_else(|| panic!("{name}: no {label}"))
                .to_string()
        };
        assert_eq!(field("description: "), case.description, "{name}");
        assert_eq!(field("expect: "), "error Malformed", "{name}");
        let key = DataKey::from_bytes(&unhex(&field("key: "))).unwrap();
        let sbx = vectors().join(format!("{name}.sbx"));
        let mut payload = Vec::new();
        RestoreReader::new(fs::File::open(&sbx).unwrap(), &key)
            .unwrap()
            .read_to_end(&mut payload)
            .unwrap();
        assert!(payload == case.tar, "{name}: the vector's payload differs");

        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("snapshot.sbx");
        fs::copy(&sbx, &backup).unwrap();
        assert_refused(
            case.name,
            case.reason,
            restore_in(dir.path(), &backup, key, &keys),
        );
    }
}

/// Refusals that predate the rule stay.
#[test]
fn earlier_refusals_stay() {
    let file = |name: &str| entry(name.as_bytes(), b'0', b"data");
    let long = "n".repeat(4097);
    let cases = [
        (archive(&[file("a"), file("./a"), end()]), "appears twice"),
        (archive(&[file("../escape"), end()]), "`..`"),
        (archive(&[file("/abs"), end()]), "absolute"),
        (archive(&[entry(b"l", b'2', b""), end()]), "a symbolic link"),
        (archive(&[entry(b"h", b'1', b""), end()]), "a hard link"),
        (
            archive(&[entry(b"c", b'3', b""), end()]),
            "a character device",
        ),
        (
            archive(&[entry(b"p", b'g', &pax(&[("path", "x")])), file("x"), end()]),
            "PAX global",
        ),
        (archive(&[file("secret.key.encrypted"), end()]), "key store"),
        (
            archive(&[file("a"), end(), file("b")]),
            "data after the end",
        ),
        (
            archive(&[
                entry(b"././@LongLink", b'L', b"a\0"),
                entry(b"././@LongLink", b'L', b"b\0"),
                file("x"),
                end(),
            ]),
            "two GNU long names",
        ),
        (
            archive(&[
                entry(b"././@LongLink", b'L', long.as_bytes()),
                file("x"),
                end(),
            ]),
            "longer than 4096 bytes",
        ),
    ];
    let keys = keys();
    for (i, (tar, reason)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("snapshot.sbx");
        fs::write(&backup, snapshot_of(&tar, &provided_key(), &keys)).unwrap();
        let result = restore_in(dir.path(), &backup, provided_key(), &keys);
        assert_refused(&format!("case {i}"), reason, result);
    }
}

/// What the rule normalises restores as the plain name: `./`, `//`, a directory's trailing `/`,
/// a GNU long name, a POSIX ustar prefix; `secret.key.encrypted` below the top is an ordinary file.
#[test]
fn normalised_names_restore() {
    let file = |name: &str, data: &[u8]| entry(name.as_bytes(), b'0', data);
    let long = format!("d/{}", "n".repeat(150));
    let mut ustar = tar_cases::header(b"f", b'0', 1);
    ustar[257..265].copy_from_slice(b"ustar\x0000");
    ustar[345..346].copy_from_slice(b"d");
    ustar[148..156].copy_from_slice(b"        ");
    let sum: u32 = ustar.iter().map(|&b| u32::from(b)).sum();
    ustar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut ustar = ustar.to_vec();
    ustar.extend_from_slice(b"u");
    ustar.resize(1024, 0);
    let tar = archive(&[
        entry(b"./d/", b'5', b""),
        file(".//d/./a", b"a"),
        entry(b"././@LongLink", b'L', format!("{long}\0").as_bytes()),
        file("truncated", b"l"),
        ustar,
        file("d/secret.key.encrypted", b"k"),
        end(),
        vec![0; 4096],
    ]);
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("snapshot.sbx");
    fs::write(&backup, snapshot_of(&tar, &provided_key(), &keys)).unwrap();
    restore_in(dir.path(), &backup, provided_key(), &keys).unwrap();
    let out = dir.path().join("restored");
    assert_eq!(fs::read(out.join("d/a")).unwrap(), b"a");
    assert_eq!(fs::read(out.join(&long)).unwrap(), b"l");
    assert_eq!(fs::read(out.join("d/f")).unwrap(), b"u");
    assert_eq!(fs::read(out.join("d/secret.key.encrypted")).unwrap(), b"k");
    assert!(!out.join("truncated").exists());
}

/// Packing applies the same rule: the key store's files at the top (its key file, lock file and
/// leftover temporaries) are never packed, and a file listed twice is refused.
#[test]
fn packing_follows_the_same_rule() {
    let provider: Arc<dyn MasterKeyProvider> = Arc::new(Fixed(MasterKey::generate().unwrap()));
    let keys = MasterKeys::new(Arc::clone(&provider));
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("orders");
    fs::create_dir_all(db.join("sub")).unwrap();
    DatabaseKeyStore::new(provider).create(&db).unwrap();
    for name in [
        ".secret.key.lock",
        ".secret.key.encrypted.Ab3dE9.tmp",
        "data",
        "sub/.secret.key.lock",
    ] {
        fs::write(db.join(name), name).unwrap();
    }
    let written = |backup: SnapshotBackup, name: &str| {
        let out = tmp.path().join(name);
        backup
            .write(&out, &keys, Channel::Authenticated)
            .map(|_| out)
    };
    let whole = written(SnapshotBackup::of_directory(&db), "whole.sbx").unwrap();
    let listed = [
        "./.secret.key.encrypted.Ab3dE9.tmp",
        "./secret.key.encrypted",
        ".secret.key.lock",
        "data",
        "sub/.secret.key.lock",
    ];
    let some = written(SnapshotBackup::of_files(&db, listed), "some.sbx").unwrap();
    for (backup, target) in [(whole, "r1"), (some, "r2")] {
        let config = RestoreConfig::new([&backup], tmp.path().join(target));
        restore(&config, &keys, Channel::Authenticated).unwrap();
        // Elsewhere than on Unix, storing the key adds its lock file `.secret.key.lock`.
        let mut names: Vec<_> = fs::read_dir(tmp.path().join(target))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| cfg!(unix) || name != ".secret.key.lock")
            .collect();
        names.sort();
        // The key file is the restore's own, written under the current master key.
        assert_eq!(names, ["data", "secret.key.encrypted", "sub"], "{target}");
        assert!(
            tmp.path()
                .join(target)
                .join("sub/.secret.key.lock")
                .exists()
        );
    }
    let twice = SnapshotBackup::of_files(&db, ["data", "./data"]);
    match written(twice, "twice.sbx") {
        Err(BackupError::UnsupportedSource { reason, .. }) => {
            assert!(reason.contains("listed twice"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!tmp.path().join("twice.sbx").exists());
}
