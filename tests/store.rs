//! Database keys at rest: create, load, get-key / put-key, rotation, and the seed's
//! "password reset" story through the public API.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use common::*;
use ring::aead;
// Through the crate's re-export: an engine needs no `secrecy` of its own.
use strongbox::key::{Fingerprint, KeyError};
use strongbox::keys::{
    EnvelopeError, FileProvider, KEY_FILE_NAME, Protection, ProviderError, PutOutcome, StoreError,
};
use strongbox::secrecy::ExposeSecret as _;
use strongbox::{DataKey, DatabaseKeyStore, KeyId, MasterKey, MasterKeyProvider};

fn provider(byte: u8) -> Arc<dyn MasterKeyProvider> {
    Arc::new(InMemory::new(byte))
}

fn databases(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let dir = root.join(format!("db{i}"));
            std::fs::create_dir(&dir).unwrap();
            dir
        })
        .collect()
}

fn fingerprint_of(store: &DatabaseKeyStore, dir: &Path) -> Option<strongbox::key::Fingerprint> {
    store.protected_key(dir).unwrap().fingerprint()
}

#[test]
fn create_load_and_exists() {
    let root = tempfile::tempdir().unwrap();
    let [a, b] = <[PathBuf; 2]>::try_from(databases(root.path(), 2)).unwrap();
    let store = DatabaseKeyStore::new(provider(1));
    assert!(!store.exists(&a).unwrap());
    assert!(matches!(store.load(&a), Err(StoreError::NotFound { .. })));

    let key = store.create(&a).unwrap();
    assert!(store.exists(&a).unwrap());
    assert_eq!(
        DatabaseKeyStore::key_path(&a),
        a.join("secret.key.encrypted")
    );
    assert_eq!(KEY_FILE_NAME, "secret.key.encrypted");
    assert_eq!(store.load(&a).unwrap().expose_secret(), key.expose_secret());
    assert_eq!(store.load_expecting(&a, key.id()).unwrap().id(), key.id());
    let blob = store.protected_key(&a).unwrap();
    assert_eq!(blob.key_id(), key.id());
    assert_eq!(blob.fingerprint(), Some(InMemory::new(1).0.fingerprint()));

    // The key file is owner-only and no temporary file is left behind: the directory holds the
    // key file alone, plus, where directories cannot be locked (not Unix), the key store's lock
    // file.
    #[cfg(unix)]
    assert_eq!(mode_of(&a.join(KEY_FILE_NAME)), 0o600);
    let mut names: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    #[cfg(unix)]
    assert_eq!(names, [KEY_FILE_NAME]);
    #[cfg(not(unix))]
    assert_eq!(names, [".secret.key.lock", KEY_FILE_NAME]);

    // Refuses to replace.
    let before = std::fs::read(a.join(KEY_FILE_NAME)).unwrap();
    assert!(matches!(
        store.create(&a),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(std::fs::read(a.join(KEY_FILE_NAME)).unwrap(), before);

    // The key file of another database is refused by id.
    let key_b = store.create(&b).unwrap();
    std::fs::copy(a.join(KEY_FILE_NAME), b.join(KEY_FILE_NAME)).unwrap();
    match store.load_expecting(&b, key_b.id()).unwrap_err() {
        StoreError::KeyIdMismatch {
            expected, found, ..
        } => {
            assert_eq!(expected, key_b.id());
            assert_eq!(found, key.id());
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn racing_creates_leave_one_key() {
    let root = tempfile::tempdir().unwrap();
    let db = databases(root.path(), 1).remove(0);
    let store = Arc::new(DatabaseKeyStore::new(provider(2)));
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (store, barrier, db) = (store.clone(), barrier.clone(), db.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.create(&db).map(|k| k.id())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::AlreadyExists { .. })))
    );
    assert_eq!(store.load(&db).unwrap().id(), *winners[0]);
}

#[test]
fn wrong_master_key_and_corruption_are_told_apart() {
    let root = tempfile::tempdir().unwrap();
    let db = databases(root.path(), 1).remove(0);
    DatabaseKeyStore::new(provider(1)).create(&db).unwrap();

    let err = DatabaseKeyStore::new(provider(2)).load(&db).unwrap_err();
    match &err {
        StoreError::Envelope {
            source: EnvelopeError::WrongMasterKey { blob, provider },
            ..
        } => {
            assert_eq!(*blob, InMemory::new(1).0.fingerprint());
            assert_eq!(*provider, InMemory::new(2).0.fingerprint());
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains(KEY_FILE_NAME), "{err}");

    let err = DatabaseKeyStore::new(provider(2))
        .with_previous(provider(3))
        .load(&db)
        .unwrap_err();
    assert!(matches!(err, StoreError::NoProviderOpens { .. }), "{err:?}");
    let text = err.to_string();
    for b in [1, 2, 3] {
        assert!(
            text.contains(&InMemory::new(b).0.fingerprint().to_string()),
            "{text}"
        );
    }

    let path = db.join(KEY_FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = DatabaseKeyStore::new(provider(1))
        .with_previous(provider(2))
        .load(&db)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Envelope {
                source: EnvelopeError::Corrupt,
                ..
            }
        ),
        "{err:?}"
    );
    std::fs::write(&path, b"hello").unwrap();
    assert!(matches!(
        DatabaseKeyStore::new(provider(1)).load(&db),
        Err(StoreError::Envelope {
            source: EnvelopeError::NotAKeyBlob,
            ..
        })
    ));
    std::fs::write(&path, vec![b's'; 100_000]).unwrap();
    assert!(matches!(
        DatabaseKeyStore::new(provider(1)).load(&db),
        Err(StoreError::Envelope {
            source: EnvelopeError::TooLarge { .. },
            ..
        })
    ));
}

#[test]
fn get_key_and_put_key() {
    let root = tempfile::tempdir().unwrap();
    let [a, b] = <[PathBuf; 2]>::try_from(databases(root.path(), 2)).unwrap();
    let store = DatabaseKeyStore::new(provider(1));
    let key = store.create(&a).unwrap();
    let exported = store.export_base64(&a).unwrap();
    assert_eq!(exported.expose_secret(), key.to_base64().expose_secret());

    // Same key again: a no-op (the file is not rewritten).
    let before = std::fs::read(a.join(KEY_FILE_NAME)).unwrap();
    assert_eq!(
        store
            .put_base64(&a, exported.expose_secret(), false)
            .unwrap(),
        PutOutcome::Unchanged
    );
    assert_eq!(std::fs::read(a.join(KEY_FILE_NAME)).unwrap(), before);

    // A different key: refused unless overwrite is asked for.
    let other = DataKey::generate().unwrap();
    let err = store
        .put_base64(&a, other.to_base64().expose_secret(), false)
        .unwrap_err();
    match &err {
        StoreError::DifferentKeyExists {
            existing, given, ..
        } => {
            assert_eq!(*existing, key.id());
            assert_eq!(*given, other.id());
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("overwrite"), "{err}");
    assert_eq!(store.load(&a).unwrap().id(), key.id());
    assert_eq!(store.put(&a, &other, true).unwrap(), PutOutcome::Replaced);
    assert_eq!(store.load(&a).unwrap().id(), other.id());

    // Into a database without a key file.
    assert_eq!(
        store.put_base64(&b, KEY_B64, false).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(store.export_base64(&b).unwrap().expose_secret(), KEY_B64);

    // Bad input never echoes.
    let err = store.put_base64(&b, "bm90IGEga2V5", false).unwrap_err();
    assert!(matches!(err, StoreError::InvalidKey(_)), "{err:?}");
    assert!(!err.to_string().contains("bm90IGEga2V5"));

    // An unreadable key file is replaced only with overwrite.
    std::fs::write(b.join(KEY_FILE_NAME), b"garbage").unwrap();
    assert!(matches!(
        store.put_base64(&b, KEY_B64, false),
        Err(StoreError::Envelope { .. })
    ));
    assert_eq!(
        store.put_base64(&b, KEY_B64, true).unwrap(),
        PutOutcome::Replaced
    );
    assert_eq!(store.export_base64(&b).unwrap().expose_secret(), KEY_B64);
}

/// A stand-in for a backup written with the database key: the backup layer is another module,
/// but what this story needs from it is only that the same key comes back.
fn backup(key: &DataKey, data: &[u8]) -> Vec<u8> {
    let k = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key.expose_secret()).unwrap(),
    );
    let mut out = data.to_vec();
    k.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key([0; 12]),
        aead::Aad::empty(),
        &mut out,
    )
    .unwrap();
    out
}

fn restore(key: &DataKey, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
    let k = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, key.expose_secret()).unwrap(),
    );
    let n = k
        .open_in_place(
            aead::Nonce::assume_unique_for_key([0; 12]),
            aead::Aad::empty(),
            &mut sealed,
        )
        .ok()?
        .len();
    sealed.truncate(n);
    Some(sealed)
}

/// The OS default provider of the password-reset story: the home key file (under `root`), or on
/// Windows DPAPI (whose loss to a reset tests/dpapi_windows.rs plays out).
#[cfg(not(windows))]
fn os_default_provider(root: &std::path::Path) -> Arc<dyn MasterKeyProvider> {
    Arc::new(strongbox::keys::UnixHomeFileProvider::at(
        root.join("home/.strongbox/secret.key"),
    ))
}
#[cfg(windows)]
fn os_default_provider(_root: &std::path::Path) -> Arc<dyn MasterKeyProvider> {
    Arc::new(strongbox::keys::DpapiProvider::new().unwrap())
}

#[test]
fn the_password_reset_story() {
    let root = tempfile::tempdir().unwrap();
    let dbs = databases(root.path(), 3);
    // Provider A: the OS default; provider B: what protects after the reset.
    let a = os_default_provider(root.path());
    let store_a = DatabaseKeyStore::new(a);
    let mut backups = Vec::new();
    for db in &dbs {
        let key = store_a.create(db).unwrap();
        backups.push(backup(&key, db.to_str().unwrap().as_bytes()));
    }

    // Before the reset: get-key for every database.
    let exported: Vec<_> = dbs
        .iter()
        .map(|db| store_a.export_base64(db).unwrap())
        .collect();

    // The reset: A's key is gone for good.
    #[cfg(not(windows))]
    std::fs::remove_dir_all(root.path().join("home")).unwrap();
    let b_path = root.path().join("new-master.key");
    write_with_mode(
        &b_path,
        MasterKey::generate()
            .unwrap()
            .to_base64()
            .expose_secret()
            .as_bytes(),
        0o600,
    );
    let store_b = DatabaseKeyStore::new(Arc::new(FileProvider::new(&b_path)));
    for db in &dbs {
        assert!(store_b.load(db).is_err(), "B cannot open A's keys");
    }

    // put-key under B, for every database.
    for (db, key) in dbs.iter().zip(&exported) {
        assert_eq!(
            store_b.put_base64(db, key.expose_secret(), false).unwrap(),
            PutOutcome::Stored
        );
        // And again: now a no-op.
        assert_eq!(
            store_b.put_base64(db, key.expose_secret(), false).unwrap(),
            PutOutcome::Unchanged
        );
    }

    // Everything written before still restores, with the key B now protects.
    let fresh_b = DatabaseKeyStore::new(Arc::new(FileProvider::new(&b_path)));
    for ((db, key), sealed) in dbs.iter().zip(&exported).zip(backups) {
        let loaded = fresh_b.load(db).unwrap();
        assert_eq!(loaded.to_base64().expose_secret(), key.expose_secret());
        assert_eq!(
            restore(&loaded, sealed).unwrap(),
            db.to_str().unwrap().as_bytes()
        );
    }
}

/// A provider that fails once `budget` calls are used up: a crash in the middle of a rotation.
#[derive(Debug)]
struct Failing {
    key: MasterKey,
    budget: AtomicUsize,
}

impl MasterKeyProvider for Failing {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        let left = self.budget.load(Ordering::SeqCst);
        if left == 0 {
            return Err(ProviderError::Other("simulated crash".into()));
        }
        self.budget.store(left - 1, Ordering::SeqCst);
        Ok(Protection::MasterKey(&self.key))
    }
}

#[test]
fn rotation_interrupted_then_resumed() {
    let root = tempfile::tempdir().unwrap();
    let dbs = databases(root.path(), 6);
    let (old, new) = (provider(10), provider(11));
    let store_old = DatabaseKeyStore::new(old.clone());
    let keys: Vec<_> = dbs.iter().map(|db| store_old.create(db).unwrap()).collect();

    // Interrupted part-way.
    let failing = Failing {
        key: MasterKey::from_bytes(&[11; 32]).unwrap(),
        budget: AtomicUsize::new(9),
    };
    let err = store_old.rotate(&dbs, &failing).unwrap_err();
    let StoreError::Rotation { dir, completed, .. } = &err else {
        panic!("{err:?}")
    };
    assert!((1..dbs.len()).contains(completed), "{err}");
    assert_eq!(dir, &dbs[*completed]);
    assert!(err.to_string().contains("rotating again resumes"), "{err}");

    // Every key is readable by the old or the new master key, whichever way round.
    let new_fp = InMemory::new(11).0.fingerprint();
    let old_fp = InMemory::new(10).0.fingerprint();
    for (i, (db, key)) in dbs.iter().zip(&keys).enumerate() {
        let expected_fp = if i < *completed { new_fp } else { old_fp };
        assert_eq!(fingerprint_of(&store_old, db), Some(expected_fp), "db{i}");
        for store in [
            DatabaseKeyStore::new(new.clone()).with_previous(old.clone()),
            DatabaseKeyStore::new(old.clone()).with_previous(new.clone()),
        ] {
            assert_eq!(store.load(db).unwrap().id(), key.id());
        }
    }

    // Resumed with the new provider healthy: the rest is rotated, the done part left alone.
    let report = store_old.rotate(&dbs, &*new).unwrap();
    assert_eq!(report.already_current, dbs[..*completed]);
    assert_eq!(report.rotated, dbs[*completed..]);
    let store_new = DatabaseKeyStore::new(new.clone());
    for (db, key) in dbs.iter().zip(&keys) {
        assert_eq!(
            store_new.load(db).unwrap().expose_secret(),
            key.expose_secret()
        );
    }

    // Rotating again changes nothing.
    let report = store_new.rotate(&dbs, &*new).unwrap();
    assert_eq!(report.already_current, dbs);
    assert!(report.rotated.is_empty());
}

#[test]
fn rotation_uses_the_previous_provider_and_checks_the_new_one_first() {
    let root = tempfile::tempdir().unwrap();
    let dbs = databases(root.path(), 4);
    let (older, old, new) = (provider(20), provider(21), provider(22));
    // Two databases still under an older key (an earlier rotation that was never finished).
    let keys: Vec<_> = dbs
        .iter()
        .enumerate()
        .map(|(i, db)| {
            let p = if i % 2 == 0 { &older } else { &old };
            DatabaseKeyStore::new(p.clone()).create(db).unwrap()
        })
        .collect();

    // The new provider fails before anything is touched.
    let before: Vec<_> = dbs
        .iter()
        .map(|db| std::fs::read(db.join(KEY_FILE_NAME)).unwrap())
        .collect();
    let broken = FileProvider::new(root.path().join("no-such-master.key"));
    let store = DatabaseKeyStore::new(old.clone()).with_previous(older.clone());
    assert!(matches!(
        store.rotate(&dbs, &broken),
        Err(StoreError::Provider(ProviderError::FileMissing { .. }))
    ));
    for (db, bytes) in dbs.iter().zip(&before) {
        assert_eq!(&std::fs::read(db.join(KEY_FILE_NAME)).unwrap(), bytes);
    }

    // (An `Arc<dyn MasterKeyProvider>` is a provider too.)
    let report = store.rotate(&dbs, new.clone()).unwrap();
    assert_eq!(report.rotated, dbs);
    let store_new = DatabaseKeyStore::new(new);
    for (db, key) in dbs.iter().zip(&keys) {
        assert_eq!(store_new.load(db).unwrap().id(), key.id());
    }
}

#[test]
fn rotation_stops_at_a_key_no_provider_opens() {
    let root = tempfile::tempdir().unwrap();
    let dbs = databases(root.path(), 3);
    DatabaseKeyStore::new(provider(30)).create(&dbs[0]).unwrap();
    DatabaseKeyStore::new(provider(39)).create(&dbs[1]).unwrap();
    DatabaseKeyStore::new(provider(30)).create(&dbs[2]).unwrap();
    let err = DatabaseKeyStore::new(provider(30))
        .rotate(&dbs, &*provider(31))
        .unwrap_err();
    match &err {
        StoreError::Rotation {
            dir,
            completed: 1,
            source,
        } => {
            assert_eq!(dir, &dbs[1]);
            assert!(
                matches!(**source, StoreError::Envelope { .. }),
                "{source:?}"
            );
        }
        e => panic!("{e:?}"),
    }
    // The one before it is under the new key; the one after untouched.
    let store = DatabaseKeyStore::new(provider(31)).with_previous(provider(30));
    assert!(store.load(&dbs[0]).is_ok() && store.load(&dbs[2]).is_ok());
}

#[cfg(unix)]
#[test]
fn exec_and_file_deliver_the_same_master_key() {
    use strongbox::keys::ExecProvider;
    let root = tempfile::tempdir().unwrap();
    let db = databases(root.path(), 1).remove(0);
    let master_path = root.path().join("master.key");
    write_with_mode(&master_path, &key_bytes(), 0o600);

    // Protected by the File provider...
    let key = DatabaseKeyStore::new(Arc::new(FileProvider::new(&master_path)))
        .create(&db)
        .unwrap();
    // ...opened by a script printing the key file's bytes, or its base64.
    let cat = script(root.path(), "cat.sh", "exec cat \"$1\"");
    let b64 = script(root.path(), "b64.sh", &format!("echo {KEY_B64}"));
    for exec in [
        ExecProvider::new(&cat).with_args([&master_path]),
        ExecProvider::new(&b64),
    ] {
        let store = DatabaseKeyStore::new(Arc::new(exec));
        assert_eq!(
            store.load(&db).unwrap().expose_secret(),
            key.expose_secret()
        );
    }
}

#[test]
fn debug_shows_no_secret() {
    let root = tempfile::tempdir().unwrap();
    let db = databases(root.path(), 1).remove(0);
    let master = InMemory(MasterKey::from_bytes(&[0xA5; 32]).unwrap());
    let store = DatabaseKeyStore::new(Arc::new(master));
    let key = store.create(&db).unwrap();
    let text = format!("{store:?} {key:?} {:?}", store.protected_key(&db).unwrap());
    assert_no_secret(&text, &[0xA5; 32]);
    assert_no_secret(&text, key.expose_secret());
}

#[test]
fn load_or_create_creates_once_and_racing_opens_get_the_same_key() {
    let root = tempfile::tempdir().unwrap();
    let db = databases(root.path(), 1).remove(0);
    let store = Arc::new(DatabaseKeyStore::new(provider(2)));
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (store, barrier, db) = (store.clone(), barrier.clone(), db.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.load_or_create(&db).map(|k| k.id())
            })
        })
        .collect();
    let ids: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(store.load(&db).unwrap().id(), ids[0]);
    assert_eq!(store.load_or_create(&db).unwrap().id(), ids[0]);
    let names: Vec<_> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [KEY_FILE_NAME], "no temporary file is left");
}

#[test]
fn load_or_create_never_replaces_a_key_file_it_cannot_open() {
    let root = tempfile::tempdir().unwrap();
    let [other, garbage] = <[PathBuf; 2]>::try_from(databases(root.path(), 2)).unwrap();
    DatabaseKeyStore::new(provider(1)).create(&other).unwrap();
    std::fs::write(DatabaseKeyStore::key_path(&garbage), b"not a key blob").unwrap();
    let store = DatabaseKeyStore::new(provider(2));
    for db in [&other, &garbage] {
        let before = std::fs::read(DatabaseKeyStore::key_path(db)).unwrap();
        let err = store.load_or_create(db).unwrap_err();
        assert!(matches!(err, StoreError::Envelope { .. }), "{err:?}");
        assert_eq!(
            std::fs::read(DatabaseKeyStore::key_path(db)).unwrap(),
            before
        );
    }
    let err = store.load_or_create(&other).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Envelope {
                source: EnvelopeError::WrongMasterKey { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn load_or_create_refuses_a_dangling_key_file_link() {
    let root = tempfile::tempdir().unwrap();
    let db = databases(root.path(), 1).remove(0);
    let link = DatabaseKeyStore::key_path(&db);
    std::os::unix::fs::symlink(root.path().join("elsewhere"), &link).unwrap();
    let err = DatabaseKeyStore::new(provider(2))
        .load_or_create(&db)
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(!root.path().join("elsewhere").exists());
}

#[test]
fn key_ids_and_fingerprints_parse_from_their_printed_form_only() {
    let key = DataKey::generate().unwrap();
    let master = MasterKey::generate().unwrap();
    let (id, fp) = (key.id(), master.fingerprint());
    assert_eq!(KeyId::from_hex(&id.to_string()), Ok(id));
    assert_eq!(Fingerprint::from_hex(&fp.to_string()), Ok(fp));
    let text = "00112233445566778899aabbccddeeff";
    assert_eq!(
        KeyId::from_hex(text).unwrap().as_bytes(),
        &[
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff
        ]
    );
    let upper = text.to_uppercase();
    let spaced = format!(" {text}\n");
    let prefixed = format!("0x{}", &text[2..]);
    let short = &text[..31];
    let long = format!("{text}0");
    let not_hex = text.replace('f', "g");
    let non_ascii = format!("{}é", &text[..30]);
    for bad in [
        upper.as_str(),
        &spaced,
        &prefixed,
        short,
        &long,
        &not_hex,
        &non_ascii,
        "",
    ] {
        let expected = KeyError::InvalidIdentifier { len: bad.len() };
        assert_eq!(KeyId::from_hex(bad), Err(expected.clone()), "{bad:?}");
        assert_eq!(Fingerprint::from_hex(bad), Err(expected), "{bad:?}");
    }
}
