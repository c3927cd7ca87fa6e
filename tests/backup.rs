//! Backup and restore through the public API: every encryption rule, every restore error, round
//! trips, and crashes in the middle.

use std::fs;
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongbox::backup::{
    Authentication, BackupEncryptionSettings, BackupError, BackupKind, Channel, Compression,
    EncryptionMode, MasterKeys, RestoreConfig, SecretOperation, inspect, restore,
};
use strongbox::key::Fingerprint;
use strongbox::keys::{Protection, ProviderError};
use strongbox::stream::StreamError;
use strongbox::{
    DataKey, DatabaseKeyStore, LogicalBackup, MasterKey, MasterKeyProvider, SnapshotBackup,
    StreamConfig,
};

#[allow(dead_code, reason = "this file compares trees only")]
mod tree;

/// A master key held in memory.
#[derive(Debug)]
struct Fixed(MasterKey);

impl MasterKeyProvider for Fixed {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0))
    }
}

fn provider() -> Arc<dyn MasterKeyProvider> {
    Arc::new(Fixed(MasterKey::generate().unwrap()))
}

fn fingerprint(provider: &Arc<dyn MasterKeyProvider>) -> Fingerprint {
    provider.fingerprint().unwrap().unwrap()
}

const AUTH: Channel = Channel::Authenticated;

struct Fx {
    tmp: tempfile::TempDir,
    master: Arc<dyn MasterKeyProvider>,
    keys: MasterKeys,
    db: PathBuf,
}

impl Fx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let master = provider();
        let db = tmp.path().join("orders");
        fs::create_dir_all(db.join("data/nested/deeper")).unwrap();
        fs::create_dir_all(db.join("empty-dir")).unwrap();
        fs::write(db.join("data/0001.db"), pattern(100_000, 1)).unwrap();
        fs::write(db.join("data/nested/deeper/leaf.bin"), pattern(5000, 2)).unwrap();
        fs::write(db.join("data/empty"), b"").unwrap();
        fs::write(db.join("journal"), b"").unwrap();
        Self {
            keys: MasterKeys::new(Arc::clone(&master)),
            tmp,
            master,
            db,
        }
    }

    fn encrypted() -> (Self, DataKey) {
        let fx = Self::new();
        let key = fx.store().create(&fx.db).unwrap();
        (fx, key)
    }

    fn store(&self) -> DatabaseKeyStore {
        DatabaseKeyStore::new(Arc::clone(&self.master))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn snapshot(&self, name: &str) -> PathBuf {
        let out = self.path(name);
        SnapshotBackup::of_directory(&self.db)
            .write(&out, &self.keys, AUTH)
            .unwrap();
        out
    }

    fn logical(
        &self,
        name: &str,
        previous: Option<strongbox::backup::BackupId>,
        data: &[u8],
    ) -> PathBuf {
        let out = self.path(name);
        let b = match previous {
            None => LogicalBackup::full(&self.db),
            Some(p) => LogicalBackup::incremental(&self.db, p),
        };
        b.write_from(&mut &data[..], &out, &self.keys, AUTH)
            .unwrap();
        out
    }

    /// Names in the temporary directory that are neither given nor part of the fixture.
    fn leftovers(&self, expected: &[&str]) -> Vec<String> {
        fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "orders" && !expected.contains(&n.as_str()))
            .collect()
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0x1000_0001);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The tree under `root` ([`tree::listing`]) without the database's key store file.
fn listing(root: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = tree::listing(root);
    out.retain(|(path, _)| path != Path::new("secret.key.encrypted"));
    out
}

fn restore_to(
    fx: &Fx,
    files: &[&Path],
    target: &str,
) -> Result<strongbox::backup::RestoreReport, BackupError> {
    restore(
        &RestoreConfig::new(files.iter().copied(), fx.path(target)),
        &fx.keys,
        AUTH,
    )
}

// ----- snapshots -----

#[test]
fn encrypted_database_snapshot_round_trip_stores_the_key() {
    let (fx, key) = Fx::encrypted();
    let snap = fx.snapshot("s");
    let info = inspect(&snap).unwrap();
    let m = info.manifest();
    assert_eq!(m.kind(), BackupKind::Snapshot);
    assert_eq!(m.encryption(), EncryptionMode::UseDatabaseKey);
    assert_eq!(m.key_id(), Some(key.id()));
    assert_eq!(info.header().key_id(), Some(key.id()));
    assert_eq!(m.database_name(), "orders");
    assert_eq!(m.compression(), Compression::None);
    assert_eq!(info.wrapped_keys().len(), 1);

    let report = restore_to(&fx, &[&snap], "restored").unwrap();
    assert!(report.key_stored);
    assert_eq!(report.files, 4);
    let restored = fx.path("restored");
    assert_eq!(listing(&restored), listing(&fx.db));
    assert_eq!(fx.store().load(&restored).unwrap().id(), key.id());
    assert_eq!(fx.leftovers(&["s", "restored"]), Vec::<String>::new());
}

#[test]
fn the_key_file_is_never_packed() {
    let (fx, _) = Fx::encrypted();
    let snap = fx.snapshot("s");
    let files = [
        PathBuf::from("secret.key.encrypted"),
        PathBuf::from("./secret.key.encrypted"),
        PathBuf::from("journal"),
    ];
    let listed = fx.path("listed");
    SnapshotBackup::of_files(&fx.db, files)
        .write(&listed, &fx.keys, AUTH)
        .unwrap();
    for (file, expect) in [(&snap, 4), (&listed, 1)] {
        let report = restore_to(&fx, &[file], "r").unwrap();
        assert_eq!(report.files, expect);
        fs::remove_dir_all(fx.path("r")).unwrap();
    }
}

#[test]
fn unencrypted_database_snapshot_is_unencrypted_and_still_checked() {
    let fx = Fx::new();
    let snap = fx.snapshot("s");
    let info = inspect(&snap).unwrap();
    assert!(!info.manifest().is_encrypted());
    assert!(!info.header().is_encrypted());
    assert!(info.wrapped_keys().is_empty());
    // Restoring an unencrypted backup needs no authenticated channel.
    let report = restore(
        &RestoreConfig::new([&snap], fx.path("r")),
        &fx.keys,
        Channel::Unauthenticated,
    )
    .unwrap();
    assert!(!report.key_stored);
    assert!(!fx.path("r/secret.key.encrypted").exists());
    assert_eq!(listing(&fx.path("r")), listing(&fx.db));

    // Corruption is still detected.
    let mut bytes = fs::read(&snap).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x10;
    fs::write(fx.path("bad"), bytes).unwrap();
    let err = restore_to(&fx, &[&fx.path("bad")], "r2").unwrap_err();
    assert!(matches!(err, BackupError::Truncated { .. }), "{err}");
    assert!(!fx.path("r2").exists());
}

#[test]
fn unencrypted_database_snapshot_with_provided_key() {
    let fx = Fx::new();
    let key = DataKey::generate().unwrap();
    let key_id = key.id();
    SnapshotBackup::of_directory(&fx.db)
        .encryption(BackupEncryptionSettings::provided_key(
            key.try_clone().unwrap(),
        ))
        .write(fx.path("s"), &fx.keys, AUTH)
        .unwrap();
    let m = inspect(fx.path("s")).unwrap().manifest().clone();
    assert_eq!(m.encryption(), EncryptionMode::UseProvidedKey);
    assert_eq!(m.key_id(), Some(key_id));
    // With the key given explicitly, and with no key at all (the wrapped copy).
    let report = restore(
        &RestoreConfig::new([fx.path("s")], fx.path("a")).with_key(key),
        &fx.keys,
        AUTH,
    )
    .unwrap();
    // The database was not encrypted: the restored one is not either.
    assert!(!report.key_stored);
    assert!(!fx.path("a/secret.key.encrypted").exists());
    restore_to(&fx, &[&fx.path("s")], "b").unwrap();
    assert_eq!(listing(&fx.path("b")), listing(&fx.db));
}

#[test]
fn snapshot_of_explicit_files() {
    let fx = Fx::new();
    SnapshotBackup::of_files(&fx.db, ["data/nested/deeper/leaf.bin", "journal"])
        .write(fx.path("s"), &fx.keys, AUTH)
        .unwrap();
    restore_to(&fx, &[&fx.path("s")], "r").unwrap();
    let got: Vec<_> = listing(&fx.path("r"))
        .into_iter()
        .filter(|(_, c)| c.is_some())
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        got,
        vec![
            PathBuf::from("data/nested/deeper/leaf.bin"),
            "journal".into()
        ]
    );
    let err = SnapshotBackup::of_files(&fx.db, ["../orders/journal"])
        .write(fx.path("bad"), &fx.keys, AUTH)
        .unwrap_err();
    assert!(
        matches!(err, BackupError::UnsupportedSource { .. }),
        "{err}"
    );
    assert_eq!(fx.leftovers(&["s", "r"]), Vec::<String>::new());
}

#[test]
fn many_small_files_and_a_large_one() {
    let (fx, _) = Fx::encrypted();
    for d in 0..10 {
        let dir = fx.db.join(format!("many/{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..50 {
            fs::write(
                dir.join(format!("{f}.row")),
                pattern(f * 7, (d * 100 + f) as u64),
            )
            .unwrap();
        }
    }
    // 40 MiB, not a multiple of the segment size.
    fs::write(fx.db.join("large.db"), pattern((40 << 20) + 12_345, 99)).unwrap();
    let snap = fx.snapshot("s");
    let report = restore_to(&fx, &[&snap], "r").unwrap();
    assert_eq!(report.files, 4 + 10 * 50 + 1);
    assert_eq!(listing(&fx.path("r")), listing(&fx.db));
}

// ----- the encryption policy, through the builders -----

#[test]
fn policy_errors_are_distinct_and_write_nothing() {
    let (fx, db_key) = Fx::encrypted();
    let snap = |s: BackupEncryptionSettings| {
        SnapshotBackup::of_directory(&fx.db)
            .encryption(s)
            .write(fx.path("out"), &fx.keys, AUTH)
            .unwrap_err()
    };
    assert!(matches!(
        snap(BackupEncryptionSettings::none()),
        BackupError::EncryptedDatabaseSnapshotMustBeEncrypted
    ));
    assert!(matches!(
        snap(BackupEncryptionSettings::provided_key(
            DataKey::generate().unwrap()
        )),
        BackupError::SnapshotKeyIsNotDatabaseKey
    ));
    assert!(matches!(
        snap(BackupEncryptionSettings::from_parts(
            EncryptionMode::UseProvidedKey,
            None
        )),
        BackupError::ProvidedKeyMissing
    ));
    assert!(matches!(
        snap(BackupEncryptionSettings::from_parts(
            EncryptionMode::UseDatabaseKey,
            Some(DataKey::generate().unwrap())
        )),
        BackupError::KeyWithoutProvidedKeyMode {
            mode: EncryptionMode::UseDatabaseKey
        }
    ));
    // The database's own key, given as a provided key, is accepted and recorded as such.
    SnapshotBackup::of_directory(&fx.db)
        .encryption(BackupEncryptionSettings::provided_key(
            db_key.try_clone().unwrap(),
        ))
        .write(fx.path("same"), &fx.keys, AUTH)
        .unwrap();
    assert_eq!(
        inspect(fx.path("same")).unwrap().manifest().encryption(),
        EncryptionMode::UseDatabaseKey
    );

    let plain = Fx::new();
    let err = SnapshotBackup::of_directory(&plain.db)
        .encryption(BackupEncryptionSettings::database_key())
        .write(plain.path("out"), &plain.keys, AUTH)
        .unwrap_err();
    assert!(matches!(err, BackupError::DatabaseNotEncrypted), "{err}");
    let err = LogicalBackup::full(&plain.db)
        .encryption(BackupEncryptionSettings::database_key())
        .create(plain.path("out"), &plain.keys, AUTH)
        .unwrap_err();
    assert!(matches!(err, BackupError::DatabaseNotEncrypted), "{err}");

    assert_eq!(fx.leftovers(&["same"]), Vec::<String>::new());
    assert_eq!(plain.leftovers(&[]), Vec::<String>::new());
}

#[test]
fn logical_backups_may_use_any_mode() {
    let (fx, db_key) = Fx::encrypted();
    let data = b"export".repeat(1000);
    // No settings: the database key.
    let follow = fx.logical("follow", None, &data);
    assert_eq!(
        inspect(&follow).unwrap().manifest().key_id(),
        Some(db_key.id())
    );
    // None: unencrypted even though the database is encrypted.
    LogicalBackup::full(&fx.db)
        .encryption(BackupEncryptionSettings::none())
        .compression(Compression::None)
        .write_from(&mut &data[..], fx.path("plain"), &fx.keys, AUTH)
        .unwrap();
    let info = inspect(fx.path("plain")).unwrap();
    assert!(!info.manifest().is_encrypted());
    assert_eq!(info.manifest().compression(), Compression::None);
    // A provided key.
    let other = DataKey::generate().unwrap();
    let other_id = other.id();
    LogicalBackup::full(&fx.db)
        .encryption(BackupEncryptionSettings::provided_key(other))
        .write_from(&mut &data[..], fx.path("provided"), &fx.keys, AUTH)
        .unwrap();
    assert_eq!(
        inspect(fx.path("provided")).unwrap().manifest().key_id(),
        Some(other_id)
    );
    // The stream's algorithm and segment size are the caller's choice.
    LogicalBackup::full(&fx.db)
        .stream_config(
            StreamConfig::default()
                .algorithm(strongbox::stream::Algorithm::ChaCha20Poly1305)
                .segment_size(1 << 20)
                .unwrap(),
        )
        .write_from(&mut &data[..], fx.path("chacha"), &fx.keys, AUTH)
        .unwrap();
    let header = inspect(fx.path("chacha")).unwrap();
    assert_eq!(
        header.header().algorithm(),
        Some(strongbox::stream::Algorithm::ChaCha20Poly1305)
    );
    assert_eq!(header.header().segment_size(), 1 << 20);
    for (i, f) in ["follow", "plain", "provided", "chacha"]
        .into_iter()
        .enumerate()
    {
        let report = restore_to(&fx, &[&fx.path(f)], &format!("r{i}")).unwrap();
        assert_eq!(fs::read(&report.exports[0]).unwrap(), data);
        assert!(!report.key_stored);
    }
}

// ----- the channel rule -----

#[test]
fn secrets_need_an_authenticated_channel() {
    let (fx, key) = Fx::encrypted();
    let snap = fx.snapshot("s");
    let unauth = Channel::Unauthenticated;
    let err = LogicalBackup::full(&fx.db)
        .encryption(BackupEncryptionSettings::provided_key(
            DataKey::generate().unwrap(),
        ))
        .create(fx.path("l"), &fx.keys, unauth)
        .unwrap_err();
    assert!(matches!(
        err,
        BackupError::UnauthenticatedChannel {
            operation: SecretOperation::BackupWithProvidedKey
        }
    ));
    let err = restore(&RestoreConfig::new([&snap], fx.path("r")), &fx.keys, unauth).unwrap_err();
    assert!(matches!(
        err,
        BackupError::UnauthenticatedChannel {
            operation: SecretOperation::RestoreEncrypted
        }
    ));
    let with_key = RestoreConfig::new([&snap], fx.path("r")).with_key(key);
    let err = restore(&with_key, &fx.keys, unauth).unwrap_err();
    assert!(matches!(
        err,
        BackupError::UnauthenticatedChannel {
            operation: SecretOperation::RestoreWithKey
        }
    ));
    assert!(err.to_string().contains("unauthenticated"), "{err}");
    assert!(!fx.path("r").exists());
    assert_eq!(fx.leftovers(&["s"]), Vec::<String>::new());
    // The explicit override.
    restore(
        &with_key,
        &fx.keys,
        Channel::DangerousUnauthenticatedAllowed,
    )
    .unwrap();
    assert_eq!(listing(&fx.path("r")), listing(&fx.db));
}

// ----- restore errors -----

#[test]
fn key_unavailable_wrong_key_and_key_for_unencrypted() {
    let (fx, key) = Fx::encrypted();
    let snap = fx.snapshot("s");
    // Another machine: another master key, no key given.
    let elsewhere = MasterKeys::new(provider());
    let err = restore(&RestoreConfig::new([&snap], fx.path("r")), &elsewhere, AUTH).unwrap_err();
    let (wrapped, tried) = (fingerprint(&fx.master), fingerprint(elsewhere.current()));
    assert!(
        matches!(&err, BackupError::KeyUnavailable {
                key_id, copies: 1, wrapped_for, tried: t, cause: None, ..
            } if *key_id == key.id() && wrapped_for[..] == [wrapped] && t[..] == [tried]),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "wrapped for master key(s) {wrapped}, and master key(s) {tried} were tried"
        )),
        "{text}"
    );
    // ... where the pasted key works, and becomes the restored database's key.
    let config = RestoreConfig::new([&snap], fx.path("r")).with_key(key.try_clone().unwrap());
    assert!(restore(&config, &elsewhere, AUTH).unwrap().key_stored);
    assert!(
        fx.store().load(fx.path("r")).is_err(),
        "stored under the other master key"
    );
    let other_store = DatabaseKeyStore::new(Arc::clone(elsewhere.current()));
    assert_eq!(other_store.load(fx.path("r")).unwrap().id(), key.id());

    // A wrong key.
    let wrong = DataKey::generate().unwrap();
    let wrong_id = wrong.id();
    let config = RestoreConfig::new([&snap], fx.path("w")).with_key(wrong);
    let err = restore(&config, &fx.keys, AUTH).unwrap_err();
    assert!(
        matches!(err, BackupError::WrongKey { expected, provided, .. } if expected == key.id() && provided == wrong_id),
        "{err}"
    );
    // A key for an unencrypted snapshot.
    let plain = Fx::new();
    let psnap = plain.snapshot("s");
    let config =
        RestoreConfig::new([&psnap], plain.path("r")).with_key(DataKey::generate().unwrap());
    let err = restore(&config, &plain.keys, AUTH).unwrap_err();
    assert!(matches!(err, BackupError::KeyForUnencryptedBackup), "{err}");
    assert!(!fx.path("w").exists() && !plain.path("r").exists());
    assert_eq!(fx.leftovers(&["s", "r"]), Vec::<String>::new());
}

#[test]
fn recovery_master_key_restores_without_a_pasted_key() {
    let (mut fx, key) = Fx::encrypted();
    let recovery = provider();
    fx.keys = MasterKeys::new(Arc::clone(&fx.master)).with_recovery(Arc::clone(&recovery));
    let snap = fx.snapshot("s");
    let info = inspect(&snap).unwrap();
    let fingerprints: Vec<_> = info
        .wrapped_keys()
        .iter()
        .map(|w| w.fingerprint())
        .collect();
    assert_eq!(fingerprints.len(), 2);
    assert!(fingerprints.contains(&recovery.fingerprint().unwrap()));
    assert!(fingerprints.contains(&fx.master.fingerprint().unwrap()));
    assert!(info.wrapped_keys().iter().all(|w| w.key_id() == key.id()));

    // A new machine whose own master key is new, with the recovery key configured.
    let new_machine = provider();
    let keys = MasterKeys::new(Arc::clone(&new_machine)).with_recovery(recovery);
    let report = restore(&RestoreConfig::new([&snap], fx.path("r")), &keys, AUTH).unwrap();
    assert!(report.key_stored);
    // The restored key is stored under the new machine's current master key.
    let store = DatabaseKeyStore::new(new_machine);
    assert_eq!(store.load(fx.path("r")).unwrap().id(), key.id());
}

#[test]
fn a_backup_from_before_a_rotation_needs_the_old_master_key_as_recovery_key() {
    let (fx, key) = Fx::encrypted();
    let before = fx.snapshot("s");
    let old = Arc::clone(&fx.master);
    let new = provider();
    let report = fx.store().rotate([&fx.db], Arc::clone(&new)).unwrap();
    assert_eq!(report.rotated, std::slice::from_ref(&fx.db));
    let (old_fp, new_fp) = (fingerprint(&old), fingerprint(&new));

    // Rotation re-protected the key file only: the backup's key is wrapped under the old key.
    let only_new = MasterKeys::new(Arc::clone(&new));
    let err = restore(
        &RestoreConfig::new([&before], fx.path("r")),
        &only_new,
        AUTH,
    )
    .unwrap_err();
    assert!(
        matches!(&err, BackupError::KeyUnavailable { key_id, wrapped_for, tried, cause: None, .. }
            if *key_id == key.id() && wrapped_for[..] == [old_fp] && tried[..] == [new_fp]),
        "{err:?}"
    );
    assert!(err.to_string().contains(&old_fp.to_string()), "{err}");
    assert!(!fx.path("r").exists());

    // The old master key kept as a recovery key restores it, under the new current key.
    let keys = MasterKeys::new(Arc::clone(&new)).with_recovery(old);
    let report = restore(&RestoreConfig::new([&before], fx.path("r")), &keys, AUTH).unwrap();
    assert!(report.key_stored);
    assert_eq!(listing(&fx.path("r")), listing(&fx.db));
    let store = DatabaseKeyStore::new(new);
    assert_eq!(store.load(fx.path("r")).unwrap().id(), key.id());
}

#[test]
fn every_header_byte_and_sampled_payload_bytes_are_checked() {
    let (fx, _) = Fx::encrypted();
    fs::remove_dir_all(fx.db.join("data")).unwrap();
    fs::write(fx.db.join("small"), pattern(9000, 5)).unwrap();
    SnapshotBackup::of_directory(&fx.db)
        .stream_config(StreamConfig::default().segment_size(4096).unwrap())
        .write(fx.path("s"), &fx.keys, AUTH)
        .unwrap();
    let good = fs::read(fx.path("s")).unwrap();
    let header_len = inspect(fx.path("s")).unwrap().header().encoded_len();
    let positions: Vec<usize> = (0..header_len)
        .chain((header_len..good.len()).step_by(97))
        .chain([good.len() - 1])
        .collect();
    for at in positions {
        let mut bad = good.clone();
        bad[at] ^= 0x04;
        fs::write(fx.path("bad"), &bad).unwrap();
        let err = restore_to(&fx, &[&fx.path("bad")], "r").unwrap_err();
        assert!(
            matches!(
                err,
                BackupError::Tampered { .. }
                    | BackupError::InvalidStream { .. }
                    // a changed extension-area length makes the header run past the file
                    | BackupError::Truncated { .. }
                    | BackupError::KeyUnavailable { .. }
                    | BackupError::Malformed { .. }
                    // without a key, a changed extension kind is seen before authentication
                    | BackupError::MalformedWrappedKeys { .. }
            ),
            "byte {at}: {err:?}"
        );
        if (14..30).contains(&at) {
            // The key id: the wrapped copy opens to another key than the header names.
            assert!(
                matches!(err, BackupError::Tampered { segment: None, .. }),
                "byte {at}: {err:?}"
            );
        }
        // A change in the last segment is the stream's end altered, one before it names its
        // segment.
        let last_segment = header_len + (good.len() - header_len - 1) / (4096 + 16) * (4096 + 16);
        if at >= last_segment {
            assert!(
                matches!(err, BackupError::Truncated { .. }),
                "byte {at}: {err:?}"
            );
        } else if at >= header_len {
            assert!(
                matches!(
                    err,
                    BackupError::Tampered {
                        segment: Some(_),
                        ..
                    }
                ),
                "byte {at}: {err:?}"
            );
        }
        assert!(!fx.path("r").exists(), "byte {at}");
    }
    assert_eq!(fx.leftovers(&["s", "bad"]), Vec::<String>::new());
}

#[test]
fn truncations_are_refused() {
    let (fx, _) = Fx::encrypted();
    let snap = fx.snapshot("s");
    let good = fs::read(&snap).unwrap();
    let header_len = inspect(&snap).unwrap().header().encoded_len();
    for cut in [
        0,
        10,
        header_len - 1,
        header_len,
        header_len + 1,
        header_len + 65_536 + 16,
        good.len() / 2,
        good.len() - 17,
        good.len() - 16,
        good.len() - 1,
    ] {
        fs::write(fx.path("cut"), &good[..cut]).unwrap();
        let err = restore_to(&fx, &[&fx.path("cut")], "r").unwrap_err();
        assert!(
            matches!(
                err,
                BackupError::Truncated { .. }
                    | BackupError::Tampered { .. }
                    | BackupError::InvalidStream {
                        source: StreamError::InvalidHeader(_),
                        ..
                    }
            ),
            "cut {cut}: {err:?}"
        );
        if cut > header_len {
            assert!(
                matches!(err, BackupError::Truncated { .. }),
                "cut {cut}: {err:?}"
            );
        }
        assert!(!fx.path("r").exists());
    }
    // Appended bytes are refused too.
    let mut longer = good.clone();
    longer.push(0);
    fs::write(fx.path("long"), &longer).unwrap();
    let err = restore_to(&fx, &[&fx.path("long")], "r").unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::InvalidStream {
                source: StreamError::TrailingData,
                ..
            } | BackupError::Truncated { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn existing_targets_and_destinations_are_never_touched() {
    let (fx, _) = Fx::encrypted();
    let snap = fx.snapshot("s");
    // An existing target, empty or not.
    for contents in [None, Some("keep me")] {
        let target = fx.path("existing");
        fs::create_dir(&target).unwrap();
        if let Some(c) = contents {
            fs::write(target.join("file"), c).unwrap();
        }
        let err = restore_to(&fx, &[&snap], "existing").unwrap_err();
        assert!(matches!(err, BackupError::TargetExists { .. }), "{err}");
        assert_eq!(
            listing(&target).len(),
            usize::from(contents.is_some()),
            "target changed"
        );
        fs::remove_dir_all(&target).unwrap();
    }
    // An existing backup file.
    fs::write(fx.path("taken"), b"precious").unwrap();
    let err = SnapshotBackup::of_directory(&fx.db)
        .write(fx.path("taken"), &fx.keys, AUTH)
        .unwrap_err();
    assert!(
        matches!(err, BackupError::DestinationExists { .. }),
        "{err}"
    );
    assert_eq!(fs::read(fx.path("taken")).unwrap(), b"precious");
    // A backup inside the directory it backs up.
    let err = SnapshotBackup::of_directory(&fx.db)
        .write(fx.db.join("self.snapshot"), &fx.keys, AUTH)
        .unwrap_err();
    assert!(
        matches!(err, BackupError::DestinationInsideSource { .. }),
        "{err}"
    );
    assert!(!fx.db.join("self.snapshot").exists());
    // No backup file at all.
    let err = restore(
        &RestoreConfig::new(Vec::<PathBuf>::new(), fx.path("r")),
        &fx.keys,
        AUTH,
    )
    .unwrap_err();
    assert!(matches!(err, BackupError::NoBackupFiles));
    assert_eq!(fx.leftovers(&["s", "taken"]), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn unsupported_sources_are_refused_and_leave_nothing() {
    let fx = Fx::new();
    std::os::unix::fs::symlink("/etc/passwd", fx.db.join("data/link")).unwrap();
    let err = SnapshotBackup::of_directory(&fx.db)
        .write(fx.path("s"), &fx.keys, AUTH)
        .unwrap_err();
    assert!(
        matches!(err, BackupError::UnsupportedSource { .. }),
        "{err}"
    );
    assert_eq!(fx.leftovers(&[]), Vec::<String>::new());
}

#[test]
fn inspect_without_a_key_and_on_foreign_files() {
    let (fx, key) = Fx::encrypted();
    let full = fx.logical("full", None, b"rows");
    let info = inspect(&full).unwrap();
    assert_eq!(info.manifest().kind(), BackupKind::LogicalFull);
    assert_eq!(info.manifest().compression(), Compression::Zstd);
    assert_eq!(info.manifest().key_id(), Some(key.id()));
    assert_eq!(info.header().version(), 1);
    fs::write(fx.path("foreign"), b"PK\x03\x04 not a backup at all").unwrap();
    assert!(matches!(
        inspect(fx.path("foreign")).unwrap_err(),
        BackupError::InvalidStream {
            position: 0,
            source: StreamError::NotStrongbox,
            ..
        }
    ));
    // A raw stream without a manifest is not a database backup.
    let raw = strongbox::BackupWriter::new(Vec::new(), &key)
        .unwrap()
        .finish()
        .unwrap();
    fs::write(fx.path("raw"), raw).unwrap();
    assert!(matches!(
        inspect(fx.path("raw")).unwrap_err(),
        BackupError::Malformed { .. }
    ));
    let err = restore_to(&fx, &[&fx.path("raw")], "r").unwrap_err();
    assert!(matches!(err, BackupError::Malformed { .. }), "{err}");
}

// ----- logical chains -----

#[test]
fn logical_chain_round_trip_and_chain_errors() {
    let (fx, key) = Fx::encrypted();
    let exports: Vec<Vec<u8>> = vec![pattern(300_000, 1), b"inc one".repeat(500), vec![]];
    let full = fx.logical("0", None, &exports[0]);
    let id0 = inspect(&full).unwrap().manifest().backup_id();
    let inc1 = fx.logical("1", Some(id0), &exports[1]);
    let id1 = inspect(&inc1).unwrap().manifest().backup_id();
    let inc2 = fx.logical("2", Some(id1), &exports[2]);
    let m2 = inspect(&inc2).unwrap().manifest().clone();
    assert_eq!(m2.kind(), BackupKind::LogicalIncremental);
    assert_eq!(m2.previous_backup_id(), Some(id1));

    let report = restore_to(&fx, &[&full, &inc1, &inc2], "r").unwrap();
    assert_eq!(report.manifests.len(), 3);
    let names: Vec<_> = report
        .exports
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "0000-logical-full.export",
            "0001-logical-incremental.export",
            "0002-logical-incremental.export"
        ]
    );
    for (path, expected) in report.exports.iter().zip(&exports) {
        assert_eq!(&fs::read(path).unwrap(), expected);
    }

    // A flipped byte in a compressed payload is reported by the stream, not by zstd (in the
    // last segment: as the stream's end altered).
    let mut bytes = fs::read(&full).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x80;
    fs::write(fx.path("flipped"), bytes).unwrap();
    let err = restore_to(&fx, &[&fx.path("flipped"), &inc1], "bad").unwrap_err();
    assert!(matches!(err, BackupError::Truncated { .. }), "{err:?}");

    let check = |files: &[&Path]| restore_to(&fx, files, "bad").unwrap_err();
    assert!(matches!(
        check(&[&full, &inc2]),
        BackupError::ChainIncomplete { position: 1, missing, .. } if missing == id1
    ));
    assert!(matches!(
        check(&[&inc1, &inc2]),
        BackupError::ChainIncomplete { position: 0, missing, .. } if missing == id0
    ));
    assert!(matches!(
        check(&[&full, &inc2, &inc1]),
        BackupError::ChainOutOfOrder { position: 1, .. }
    ));
    assert!(matches!(
        check(&[&full, &inc1, &inc1]),
        BackupError::ChainOutOfOrder { position: 2, .. }
    ));
    assert!(matches!(
        check(&[&full, &full]),
        BackupError::ChainOutOfOrder { position: 1, .. }
    ));
    let snap = fx.snapshot("snap");
    assert!(matches!(
        check(&[&full, &snap]),
        BackupError::UnexpectedKind { .. }
    ));
    // An incremental backup of another database that claims to follow this chain.
    let other = fx.path("other-db");
    fs::create_dir(&other).unwrap();
    let stray = fx.path("stray");
    LogicalBackup::incremental(&other, id0)
        .encryption(BackupEncryptionSettings::provided_key(
            key.try_clone().unwrap(),
        ))
        .write_from(&mut &b"x"[..], &stray, &fx.keys, AUTH)
        .unwrap();
    assert!(matches!(
        check(&[&full, &stray]),
        BackupError::ChainDatabaseMismatch { position: 1, .. }
    ));
    assert!(!fx.path("bad").exists());
}

/// An unencrypted logical backup of `fx`'s database following `previous`.
fn unencrypted(
    fx: &Fx,
    name: &str,
    previous: Option<strongbox::backup::BackupId>,
    data: &[u8],
) -> PathBuf {
    let b = match previous {
        None => LogicalBackup::full(&fx.db),
        Some(p) => LogicalBackup::incremental(&fx.db, p),
    };
    b.encryption(BackupEncryptionSettings::none())
        .write_from(&mut &data[..], fx.path(name), &fx.keys, AUTH)
        .unwrap();
    fx.path(name)
}

#[test]
fn an_integrity_only_incremental_in_an_encrypted_chain_is_refused() {
    let (fx, key) = Fx::encrypted();
    let full = fx.logical("0", None, b"full");
    let id0 = inspect(&full).unwrap().manifest().backup_id();
    // Anyone who can write the backup folder can make this one: it needs no key.
    let injected = unencrypted(&fx, "1", Some(id0), b"injected");
    let files = [&full, &injected];
    let with_key = |c: RestoreConfig| c.with_key(key.try_clone().unwrap());
    for config in [
        RestoreConfig::new(files, fx.path("r")),
        with_key(RestoreConfig::new(files, fx.path("r"))),
    ] {
        let err = restore(&config, &fx.keys, AUTH).unwrap_err();
        assert!(
            matches!(&err, BackupError::IntegrityOnlyMember { position: 1, path } if path == &injected),
            "{err:?}"
        );
        assert!(err.to_string().contains("backup 1 ("), "{err}");
    }
    assert!(!fx.path("r").exists());
    assert_eq!(fx.leftovers(&["0", "1"]), Vec::<String>::new());

    // Allowed explicitly, it restores, and the report says what vouched for each backup.
    let config =
        RestoreConfig::new(files, fx.path("r")).dangerously_allow_unauthenticated_members();
    let report = restore(&config, &fx.keys, AUTH).unwrap();
    assert_eq!(
        report.authentication,
        [Authentication::Key(key.id()), Authentication::IntegrityOnly]
    );
    assert_eq!(fs::read(&report.exports[1]).unwrap(), b"injected");
    let inc = fx.logical("2", Some(id0), b"inc");
    let report = restore_to(&fx, &[&full, &inc], "all").unwrap();
    assert_eq!(report.authentication, [Authentication::Key(key.id()); 2]);
}

#[test]
fn an_unencrypted_full_backup_in_place_of_an_encrypted_one_is_refused() {
    let (fx, key) = Fx::encrypted();
    let replaced = unencrypted(&fx, "0", None, b"replaced");
    let id0 = inspect(&replaced).unwrap().manifest().backup_id();
    let inc = fx.logical("1", Some(id0), b"inc");
    let err = restore_to(&fx, &[&replaced, &inc], "r").unwrap_err();
    assert!(
        matches!(err, BackupError::IntegrityOnlyMember { position: 0, .. }),
        "{err:?}"
    );
    // Alone with a key: refused; alone without one, restored and reported as integrity-only.
    let config = RestoreConfig::new([&replaced], fx.path("r")).with_key(key);
    let err = restore(&config, &fx.keys, AUTH).unwrap_err();
    assert!(
        matches!(err, BackupError::KeyForUnencryptedBackup),
        "{err:?}"
    );
    let report = restore_to(&fx, &[&replaced], "r").unwrap();
    assert_eq!(report.authentication, [Authentication::IntegrityOnly]);
}

#[test]
fn every_encrypted_member_uses_the_same_key() {
    let (fx, key) = Fx::encrypted();
    let full = fx.logical("0", None, b"full");
    let id0 = inspect(&full).unwrap().manifest().backup_id();
    let other = DataKey::generate().unwrap();
    let other_id = other.id();
    LogicalBackup::incremental(&fx.db, id0)
        .encryption(BackupEncryptionSettings::provided_key(other))
        .write_from(&mut &b"inc"[..], fx.path("1"), &fx.keys, AUTH)
        .unwrap();
    // Both wrapped copies open with the master key; the chain is still refused.
    let err = restore_to(&fx, &[&full, &fx.path("1")], "r").unwrap_err();
    assert!(
        matches!(err, BackupError::MemberKeyMismatch { position: 1, expected, found, .. }
            if expected == key.id() && found == other_id),
        "{err:?}"
    );
    assert!(!fx.path("r").exists());
}

#[test]
fn a_zstd_bomb_is_refused() {
    let fx = Fx::new();
    let len = 64u64 << 20;
    LogicalBackup::full(&fx.db)
        .compression(Compression::Zstd)
        .write_from(
            &mut std::io::repeat(0).take(len),
            fx.path("bomb"),
            &fx.keys,
            AUTH,
        )
        .unwrap();
    let size = fs::metadata(fx.path("bomb")).unwrap().len();
    assert!(size < 64 << 10, "{size}");
    let err = restore_to(&fx, &[&fx.path("bomb")], "r").unwrap_err();
    assert!(
        matches!(err, BackupError::ExpansionLimit { position: 0, limit, .. } if limit == 16 << 20),
        "{err:?}"
    );
    assert_eq!(fx.leftovers(&["bomb"]), Vec::<String>::new());
    let config = RestoreConfig::new([fx.path("bomb")], fx.path("r")).with_max_expansion_ratio(None);
    assert_eq!(restore(&config, &fx.keys, AUTH).unwrap().bytes, len);
}

#[test]
fn a_compressed_snapshot_that_expands_too_far_is_refused() {
    let fx = Fx::new();
    fs::remove_dir_all(fx.db.join("data")).unwrap();
    let zeros = fs::File::create(fx.db.join("preallocated")).unwrap();
    zeros.set_len(64 << 20).unwrap();
    drop(zeros);
    SnapshotBackup::of_directory(&fx.db)
        .compression(Compression::Zstd)
        .write(fx.path("s"), &fx.keys, AUTH)
        .unwrap();
    let err = restore_to(&fx, &[&fx.path("s")], "r").unwrap_err();
    assert!(
        matches!(err, BackupError::ExpansionLimit { position: 0, .. }),
        "{err:?}"
    );
    assert_eq!(fx.leftovers(&["s"]), Vec::<String>::new());
    // A genuine backup of that kind restores with a higher limit.
    let config =
        RestoreConfig::new([fx.path("s")], fx.path("r")).with_max_expansion_ratio(Some(1 << 20));
    restore(&config, &fx.keys, AUTH).unwrap();
    assert_eq!(
        fs::metadata(fx.path("r/preallocated")).unwrap().len(),
        64 << 20
    );
}

// ----- crashes -----

#[test]
fn a_dropped_logical_writer_leaves_nothing() {
    let (fx, _) = Fx::encrypted();
    let mut w = LogicalBackup::full(&fx.db)
        .create(fx.path("l"), &fx.keys, AUTH)
        .unwrap();
    w.write_all(&pattern(1 << 20, 3)).unwrap();
    assert_eq!(
        fx.leftovers(&[]).len(),
        1,
        "the temporary file exists while writing"
    );
    drop(w);
    assert!(!fx.path("l").exists());
    assert_eq!(fx.leftovers(&[]), Vec::<String>::new());
}

#[test]
fn a_failing_export_leaves_nothing() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("the engine's export failed"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }
    let (fx, _) = Fx::encrypted();
    let err = LogicalBackup::full(&fx.db)
        .write_from(Failing(1 << 20), fx.path("l"), &fx.keys, AUTH)
        .unwrap_err();
    assert!(matches!(err, BackupError::ExportRead(_)), "{err}");
    assert_eq!(fx.leftovers(&[]), Vec::<String>::new());
}

/// Run by `a_killed_backup_leaves_no_finished_looking_file` in a child process.
#[test]
#[ignore = "helper: runs in a child process"]
fn child_backup_that_never_finishes() {
    let (Some(dest), Some(key)) = (
        std::env::var_os("STRONGBOX_TEST_DEST"),
        std::env::var("STRONGBOX_TEST_KEY").ok(),
    ) else {
        return;
    };
    let dest = PathBuf::from(dest);
    let db = dest.parent().unwrap().join("db");
    fs::create_dir_all(&db).unwrap();
    let keys = MasterKeys::new(provider());
    let mut w = LogicalBackup::full(&db)
        .encryption(BackupEncryptionSettings::provided_key(
            DataKey::from_base64(&key).unwrap(),
        ))
        .compression(Compression::None)
        .create(&dest, &keys, AUTH)
        .unwrap();
    loop {
        w.write_all(&[7u8; 65_536]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Run by `a_killed_restore_leaves_no_target` in a child process.
#[test]
#[ignore = "helper: runs in a child process"]
fn child_restore() {
    let (Some(backup), Some(target), Some(key)) = (
        std::env::var_os("STRONGBOX_TEST_BACKUP"),
        std::env::var_os("STRONGBOX_TEST_TARGET"),
        std::env::var("STRONGBOX_TEST_KEY").ok(),
    ) else {
        return;
    };
    let config = RestoreConfig::new([PathBuf::from(backup)], target)
        .with_key(DataKey::from_base64(&key).unwrap());
    restore(&config, &MasterKeys::new(provider()), AUTH).unwrap();
}

fn child(test: &str, env: &[(&str, &std::ffi::OsStr)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        test,
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed().as_secs() < 60,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn a_killed_backup_leaves_no_finished_looking_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("backup.strongbox");
    let key = DataKey::generate().unwrap();
    let b64 = base64(&key);
    let mut proc = child(
        "child_backup_that_never_finishes",
        &[
            ("STRONGBOX_TEST_DEST", dest.as_os_str()),
            ("STRONGBOX_TEST_KEY", std::ffi::OsStr::new(&b64)),
        ],
    );
    let partial = || {
        fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(".partial"))
    };
    wait_for("the partial file", || {
        partial().is_some_and(|p| fs::metadata(p).unwrap().len() > 300_000)
    });
    proc.kill().unwrap();
    proc.wait().unwrap();
    assert!(!dest.exists(), "a killed backup must not look finished");
    // What is left has a temporary name, and a restore with the right key calls it truncated.
    let partial = partial().unwrap();
    let config = RestoreConfig::new([&partial], tmp.path().join("r")).with_key(key);
    let err = restore(&config, &MasterKeys::new(provider()), AUTH).unwrap_err();
    assert!(matches!(err, BackupError::Truncated { .. }), "{err:?}");
    assert!(!tmp.path().join("r").exists());
}

fn base64(key: &DataKey) -> String {
    use secrecy::ExposeSecret;
    key.to_base64().expose_secret().to_string()
}

#[test]
fn a_killed_restore_leaves_no_target() {
    let fx = Fx::new();
    // Many files: a restore syncs each one, so it takes long enough to be interrupted.
    for d in 0..10 {
        let dir = fx.db.join(format!("d{d}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..200 {
            fs::write(dir.join(f.to_string()), pattern(2000, f)).unwrap();
        }
    }
    let key = DataKey::generate().unwrap();
    let b64 = base64(&key);
    SnapshotBackup::of_directory(&fx.db)
        .encryption(BackupEncryptionSettings::provided_key(key))
        .write(fx.path("s"), &fx.keys, AUTH)
        .unwrap();
    let target = fx.path("target");
    let mut proc = child(
        "child_restore",
        &[
            ("STRONGBOX_TEST_BACKUP", fx.path("s").as_os_str()),
            ("STRONGBOX_TEST_TARGET", target.as_os_str()),
            ("STRONGBOX_TEST_KEY", std::ffi::OsStr::new(&b64)),
        ],
    );
    let building = || {
        fs::read_dir(fx.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains(".target.restoring-"))
    };
    wait_for("the restore to start", || {
        building().is_some_and(|d| fs::read_dir(d).map(|r| r.count() > 0).unwrap_or(false))
    });
    proc.kill().unwrap();
    let status = proc.wait().unwrap();
    assert!(
        !status.success(),
        "the restore finished before it was killed"
    );
    assert!(!target.exists(), "a killed restore must not leave a target");
}

// ----- the format, read by other tools -----

#[cfg(unix)]
#[test]
fn a_snapshot_payload_is_a_tar_archive_that_tar_reads() {
    use std::io::Read;
    use std::process::Command;
    if Command::new("tar").arg("--version").output().is_err() {
        eprintln!("skipped: no `tar` program on this machine");
        return;
    }
    let fx = Fx::new();
    fs::write(fx.db.join("data").join("n".repeat(150)), b"a long name").unwrap();
    let snap = fx.snapshot("s");
    let mut payload = Vec::new();
    strongbox::RestoreReader::unencrypted(fs::File::open(&snap).unwrap())
        .unwrap()
        .read_to_end(&mut payload)
        .unwrap();
    fs::write(fx.path("payload.tar"), payload).unwrap();
    fs::create_dir(fx.path("out")).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(fx.path("payload.tar"))
        .arg("-C")
        .arg(fx.path("out"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(listing(&fx.path("out")), listing(&fx.db));
}

#[test]
fn types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<BackupError>();
    send_sync::<MasterKeys>();
    send_sync::<RestoreConfig>();
    send_sync::<strongbox::backup::Manifest>();
    send::<strongbox::backup::LogicalBackupWriter>();
    send::<SnapshotBackup>();
    send::<LogicalBackup>();
}

/// A snapshot whose payload is `tar`, encrypted with `key`, its key wrapped under `fx`'s
/// master key: what anyone holding the key can write.
fn crafted_snapshot(fx: &Fx, name: &str, key: &DataKey, tar: &[u8]) -> PathBuf {
    let manifest = format!(
        concat!(
            r#"{{"version":1,"kind":"snapshot","backup_id":"{}","database":"orders","#,
            r#""created_unix":1,"compression":"none","encryption":"UseProvidedKey","#,
            r#""key_id":"{}","previous_backup_id":null}}"#
        ),
        "ab".repeat(16),
        key.id()
    );
    let blob = strongbox::ProtectedKey::protect(key, &*fx.master)
        .unwrap()
        .into_bytes();
    let mut wrapped = vec![1u8];
    wrapped.extend_from_slice(&(blob.len() as u32).to_be_bytes());
    wrapped.extend_from_slice(&blob);
    let exts = vec![
        strongbox::stream::Extension::new(1, manifest.into_bytes()),
        strongbox::stream::Extension::new(2, wrapped),
    ];
    let mut w =
        strongbox::BackupWriter::with_config(Vec::new(), key, &StreamConfig::default(), exts)
            .unwrap();
    w.write_all(tar).unwrap();
    fs::write(fx.path(name), w.finish().unwrap()).unwrap();
    fx.path(name)
}

#[test]
fn names_from_a_backup_are_escaped_in_errors() {
    let fx = Fx::new();
    let key = DataKey::generate().unwrap();
    let name = "x\u{1b}]0;owned\u{7}\u{1b}[2J";
    let mut builder = tar::Builder::new(Vec::new());
    for _ in 0..2 {
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, &b"x"[..]).unwrap();
    }
    let snap = crafted_snapshot(&fx, "s", &key, &builder.into_inner().unwrap());
    let config = RestoreConfig::new([&snap], fx.path("r")).with_key(key);
    let err = restore(&config, &fx.keys, AUTH).unwrap_err();
    // Windows refuses the name (control characters) when the first entry is written, before the
    // second shows it twice: the error then names the path, escaped the same way.
    let refused_by_windows = cfg!(windows) && matches!(err, BackupError::Io { .. });
    assert!(
        matches!(err, BackupError::Malformed { .. }) || refused_by_windows,
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert_eq!(
        BackupError::Malformed {
            position: 0,
            path: "x\u{1b}[2J".into(),
            reason: format!("entry {name} appears twice")
        }
        .to_string(),
        r"backup 0 (x\u{1b}[2J) is malformed: entry x\u{1b}]0;owned\u{7}\u{1b}[2J appears twice"
    );
    assert!(!fx.path("r").exists());
}
