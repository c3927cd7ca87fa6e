//! `strongbox::backup::verify` through the public API: it accepts what a restore accepts and
//! refuses what a restore refuses, with the same errors, and writes nothing.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongbox::backup::{
    Authentication, BackupEncryptionSettings, BackupError, BackupId, Channel, Compression,
    MasterKeys, RestoreConfig, SecretOperation, VerifyConfig, inspect, restore, verify,
};
use strongbox::{DataKey, DatabaseKeyStore, LogicalBackup, SnapshotBackup};

mod common;

fn master_keys(byte: u8) -> MasterKeys {
    MasterKeys::new(Arc::new(common::InMemory::new(byte)))
}

const AUTH: Channel = Channel::Authenticated;

/// A database directory `orders` with a key and a few files, in a temporary directory.
struct Fx {
    tmp: tempfile::TempDir,
    keys: MasterKeys,
    key: DataKey,
    db: PathBuf,
}

impl Fx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let keys = master_keys(1);
        let db = tmp.path().join("orders");
        fs::create_dir_all(db.join("data/nested")).unwrap();
        fs::write(db.join("data/0001.db"), vec![7u8; 70_000]).unwrap();
        fs::write(db.join("data/nested/leaf"), b"leaf").unwrap();
        let key = DatabaseKeyStore::new(Arc::clone(keys.current()))
            .create(&db)
            .unwrap();
        Self { tmp, keys, key, db }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A logical backup of `data` (encrypted with the database key unless `settings` says
    /// otherwise).
    fn logical(
        &self,
        name: &str,
        previous: Option<BackupId>,
        data: &[u8],
        settings: Option<BackupEncryptionSettings>,
    ) -> PathBuf {
        let mut b = match previous {
            None => LogicalBackup::full(&self.db),
            Some(p) => LogicalBackup::incremental(&self.db, p),
        };
        if let Some(settings) = settings {
            b = b.encryption(settings);
        }
        b.write_from(&mut &data[..], self.path(name), &self.keys, AUTH)
            .unwrap();
        self.path(name)
    }

    /// A full backup and two incrementals: `0`, `1`, `2`.
    fn chain(&self) -> Vec<PathBuf> {
        let full = self.logical("0", None, b"full export", None);
        let id0 = inspect(&full).unwrap().manifest().backup_id();
        let inc1 = self.logical("1", Some(id0), b"first", None);
        let id1 = inspect(&inc1).unwrap().manifest().backup_id();
        let inc2 = self.logical("2", Some(id1), b"second", None);
        vec![full, inc1, inc2]
    }

    /// Every name in the temporary directory.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

#[test]
fn a_chain_verifies_through_its_wrapped_keys_and_names_each_members_key() {
    let fx = Fx::new();
    let chain = fx.chain();
    let before = fx.names();
    // No key given: the copies wrapped under the master key open it.
    let report = verify(&VerifyConfig::new(&chain), &fx.keys, AUTH).unwrap();
    assert_eq!(report.authentication, [Authentication::Key(fx.key.id()); 3]);
    assert_eq!(report.manifests.len(), 3);
    assert_eq!(report.files, 3);
    assert_eq!(report.bytes, (b"full export".len() + 5 + 6) as u64);
    assert_eq!(fx.names(), before, "verify wrote something");
    // With the key, the same.
    let config = VerifyConfig::new(&chain).with_key(fx.key.try_clone().unwrap());
    let report = verify(&config, &fx.keys, AUTH).unwrap();
    assert_eq!(report.authentication, [Authentication::Key(fx.key.id()); 3]);
    // Another master key opens none of the copies.
    let err = verify(&VerifyConfig::new(&chain), &master_keys(2), AUTH).unwrap_err();
    assert!(
        matches!(err, BackupError::KeyUnavailable { key_id, copies: 1, .. } if key_id == fx.key.id()),
        "{err:?}"
    );
}

#[test]
fn a_chain_out_of_order_or_incomplete_is_refused_as_restore_refuses_it() {
    let fx = Fx::new();
    let chain = fx.chain();
    for files in [
        vec![&chain[0], &chain[2]],
        vec![&chain[1], &chain[2]],
        vec![&chain[0], &chain[2], &chain[1]],
    ] {
        let err = verify(&VerifyConfig::new(&files), &fx.keys, AUTH).unwrap_err();
        let refused =
            restore(&RestoreConfig::new(&files, fx.path("r")), &fx.keys, AUTH).unwrap_err();
        assert_eq!(format!("{err:?}"), format!("{refused:?}"));
    }
    let err = verify(&VerifyConfig::new(Vec::<PathBuf>::new()), &fx.keys, AUTH).unwrap_err();
    assert!(matches!(err, BackupError::NoBackupFiles), "{err:?}");
}

#[test]
fn an_integrity_only_incremental_in_an_encrypted_chain_is_refused_unless_allowed() {
    let fx = Fx::new();
    let full = fx.logical("0", None, b"full", None);
    let id0 = inspect(&full).unwrap().manifest().backup_id();
    let injected = fx.logical(
        "1",
        Some(id0),
        b"injected",
        Some(BackupEncryptionSettings::none()),
    );
    let files = [&full, &injected];
    for config in [
        VerifyConfig::new(files),
        VerifyConfig::new(files).with_key(fx.key.try_clone().unwrap()),
    ] {
        let err = verify(&config, &fx.keys, AUTH).unwrap_err();
        assert!(
            matches!(&err, BackupError::IntegrityOnlyMember { position: 1, path } if path == &injected),
            "{err:?}"
        );
    }
    let config = VerifyConfig::new(files).dangerously_allow_unauthenticated_members();
    let report = verify(&config, &fx.keys, AUTH).unwrap();
    assert_eq!(
        report.authentication,
        [
            Authentication::Key(fx.key.id()),
            Authentication::IntegrityOnly
        ]
    );
}

#[test]
fn a_snapshot_is_read_to_its_end_and_checked_like_a_restore() {
    let fx = Fx::new();
    let snap = fx.path("s");
    SnapshotBackup::of_directory(&fx.db)
        .write(&snap, &fx.keys, AUTH)
        .unwrap();
    let report = verify(&VerifyConfig::new([&snap]), &fx.keys, AUTH).unwrap();
    assert_eq!(report.authentication, [Authentication::Key(fx.key.id())]);
    let restored = restore(&RestoreConfig::new([&snap], fx.path("r")), &fx.keys, AUTH).unwrap();
    assert_eq!(
        (report.files, report.bytes),
        (restored.files, restored.bytes)
    );

    // A changed byte in the last segment, and a cut file, are found only by reading to the end.
    let bytes = fs::read(&snap).unwrap();
    let mut changed = bytes.clone();
    let last = changed.len() - 20;
    changed[last] ^= 1;
    fs::write(fx.path("changed"), &changed).unwrap();
    let err = verify(&VerifyConfig::new([fx.path("changed")]), &fx.keys, AUTH).unwrap_err();
    assert!(matches!(err, BackupError::Truncated { .. }), "{err:?}");
    fs::write(fx.path("cut"), &bytes[..bytes.len() - 100]).unwrap();
    let err = verify(&VerifyConfig::new([fx.path("cut")]), &fx.keys, AUTH).unwrap_err();
    let refused = restore(
        &RestoreConfig::new([fx.path("cut")], fx.path("r2")),
        &fx.keys,
        AUTH,
    )
    .unwrap_err();
    assert_eq!(format!("{err:?}"), format!("{refused:?}"));
}

#[test]
fn the_expansion_limit_and_the_channel_are_those_of_restore() {
    let fx = Fx::new();
    let len = 20u64 << 20;
    LogicalBackup::full(&fx.db)
        .compression(Compression::Zstd)
        .write_from(
            &mut std::io::repeat(0).take(len),
            fx.path("bomb"),
            &fx.keys,
            AUTH,
        )
        .unwrap();
    let err = verify(&VerifyConfig::new([fx.path("bomb")]), &fx.keys, AUTH).unwrap_err();
    assert!(
        matches!(err, BackupError::ExpansionLimit { position: 0, limit, .. } if limit == 16 << 20),
        "{err:?}"
    );
    let config = VerifyConfig::new([fx.path("bomb")]).with_max_expansion_ratio(None);
    assert_eq!(verify(&config, &fx.keys, AUTH).unwrap().bytes, len);

    let unauth = Channel::Unauthenticated;
    let err = verify(&config, &fx.keys, unauth).unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::UnauthenticatedChannel {
                operation: SecretOperation::RestoreEncrypted
            }
        ),
        "{err:?}"
    );
    let with_key = VerifyConfig::new([fx.path("bomb")]).with_key(fx.key.try_clone().unwrap());
    let err = verify(&with_key, &fx.keys, unauth).unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::UnauthenticatedChannel {
                operation: SecretOperation::RestoreWithKey
            }
        ),
        "{err:?}"
    );
    let shown = format!("{with_key:?}");
    let base64 = secrecy::ExposeSecret::expose_secret(&fx.key.to_base64()).to_owned();
    assert!(
        shown.contains(&fx.key.id().to_string()) && !shown.contains(&base64),
        "{shown}"
    );
}

#[test]
fn a_raw_stream_is_not_a_backup() {
    let fx = Fx::new();
    let raw = fx.path("raw");
    let mut writer =
        strongbox::BackupWriter::new(fs::File::create(&raw).unwrap(), &fx.key).unwrap();
    std::io::Write::write_all(&mut writer, b"plain stream").unwrap();
    writer.finish().unwrap();
    let err = verify(&VerifyConfig::new([&raw]), &fx.keys, AUTH).unwrap_err();
    assert!(matches!(err, BackupError::Malformed { .. }), "{err:?}");
    assert!(Path::new(&raw).exists());
}

#[test]
fn types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<VerifyConfig>();
    send_sync::<strongbox::backup::VerifyReport>();
}
