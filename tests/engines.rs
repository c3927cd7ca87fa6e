//! The storage-engine examples (`examples/sqlite_backup.rs`, `examples/redb_backup.rs`) run on
//! small databases, checking what they claim: live databases backed up and restored through
//! strongbox come back consistent.
use strongbox::backup::{Compression, EncryptionMode};

#[allow(dead_code)]
#[path = "../examples/sqlite_backup.rs"]
mod sqlite_backup;

#[test]
fn a_live_sqlite_database_is_restored_as_a_prefix_of_its_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut printed = Vec::new();
    let outcome = sqlite_backup::run(tmp.path(), 1 << 20, &mut printed).unwrap();
    let printed = String::from_utf8(printed).unwrap();
    assert_eq!(outcome.integrity, "ok", "{printed}");
    assert!(outcome.is_prefix, "{outcome:?}");
    assert!(
        outcome.committed_before <= outcome.restored && outcome.restored <= outcome.begun_after,
        "{outcome:?}"
    );
    assert!(outcome.same_key, "{outcome:?}");
    assert_eq!(
        outcome.database_dir_after,
        [
            "orders.sqlite",
            "orders.sqlite-shm",
            "orders.sqlite-wal",
            "secret.key.encrypted"
        ],
        "no copy of the database beside it"
    );
    assert_eq!(
        outcome.restored_dir,
        ["orders.sqlite", "secret.key.encrypted"]
    );
    assert_eq!(outcome.encryption, EncryptionMode::UseDatabaseKey);
}

#[allow(dead_code)]
#[path = "../examples/redb_backup.rs"]
mod redb_backup;

#[test]
fn a_live_redb_database_is_restored_from_a_full_and_an_incremental_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let mut printed = Vec::new();
    let outcome = redb_backup::run(tmp.path(), 1 << 20, Compression::Zstd, &mut printed).unwrap();
    let printed = String::from_utf8(printed).unwrap();
    assert!(outcome.equal, "{outcome:?}\n{printed}");
    assert!(
        outcome.full_seq < outcome.incremental_seq && outcome.incremental_records > 0,
        "{outcome:?}"
    );
    assert!(outcome.restored_keys > 1000, "{outcome:?}");
    assert_eq!(outcome.encryption, EncryptionMode::UseDatabaseKey);
}

#[test]
fn a_redb_chain_with_an_altered_incremental_leaves_no_database() {
    use std::sync::Arc;
    use strongbox::backup::{BackupError, MasterKeys};
    use strongbox::keys::FileProvider;

    let tmp = tempfile::tempdir().unwrap();
    redb_backup::run(tmp.path(), 1 << 20, Compression::None, &mut Vec::new()).unwrap();
    let work = tmp.path();
    let incremental = work.join("inventory.1.incremental");
    let mut bytes = std::fs::read(&incremental).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&incremental, bytes).unwrap();
    let keys = MasterKeys::new(Arc::new(FileProvider::new(work.join("master.key"))));
    let before: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();

    let dest = work.join("never.redb");
    let err =
        redb_backup::restore_chain(&[work.join("inventory.0.full"), incremental], &dest, &keys)
            .unwrap_err();
    let err = err.downcast::<BackupError>().unwrap();
    assert!(
        matches!(
            *err,
            BackupError::Tampered { position: 1, .. } | BackupError::Truncated { position: 1, .. }
        ),
        "{err:?}"
    );
    let after: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "nothing left behind");
}

#[test]
fn a_sqlite_backup_restores_the_database_file_with_no_copy_on_disk() {
    use std::sync::Arc;
    use strongbox::backup::{Channel, MasterKeys, RestoreConfig, restore};
    use strongbox::keys::FileProvider;
    use strongbox::{DatabaseKeyStore, MasterKeyProvider};

    let tmp = tempfile::tempdir().unwrap();
    let master: Arc<dyn MasterKeyProvider> =
        Arc::new(FileProvider::create_new(tmp.path().join("master.key")).unwrap());
    let keys = MasterKeys::new(Arc::clone(&master));
    let db_dir = tmp.path().join("db");
    std::fs::create_dir(&db_dir).unwrap();
    DatabaseKeyStore::new(master).create(&db_dir).unwrap();
    let db = rusqlite::Connection::open(db_dir.join("orders.sqlite")).unwrap();
    db.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (42);")
        .unwrap();
    let names = |dir: &std::path::Path| sqlite_backup::names_in(dir).unwrap();
    let before = names(&db_dir);

    let mut upload = Vec::new();
    sqlite_backup::backup(&db, &db_dir, &keys, &mut upload).unwrap();
    assert_eq!(names(&db_dir), before);
    let backup = tmp.path().join("backup");
    std::fs::write(&backup, upload).unwrap();
    let restored = tmp.path().join("restored");
    restore(
        &RestoreConfig::new([&backup], &restored),
        &keys,
        Channel::Authenticated,
    )
    .unwrap();
    assert_eq!(names(&restored), ["orders.sqlite", "secret.key.encrypted"]);
    let copy = rusqlite::Connection::open(restored.join("orders.sqlite")).unwrap();
    let x: i64 = copy.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 42);
}
