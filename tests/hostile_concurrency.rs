//! Many threads sharing one provider and one key store; concurrent changes to one database's
//! key, in threads and in processes. The key store's lock (`.secret.key.lock`) must make each
//! change atomic: no change is lost, no key file is ever unreadable.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;

use common::InMemory;
use secrecy::ExposeSecret as _;
use strongbox::keys::{FileProvider, PutOutcome};
use strongbox::{DataKey, DatabaseKeyStore, MasterKeyProvider};

fn db_dirs(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let d = root.join(format!("db{i}"));
            std::fs::create_dir(&d).unwrap();
            d
        })
        .collect()
}

#[test]
fn many_threads_share_one_provider_and_one_store() {
    let tmp = tempfile::tempdir().unwrap();
    let master = tmp.path().join("master.key");
    common::write_with_mode(&master, &common::key_bytes(), 0o600);
    let provider: Arc<dyn MasterKeyProvider> = Arc::new(FileProvider::new(&master));
    let store = Arc::new(DatabaseKeyStore::new(Arc::clone(&provider)));
    let dirs = db_dirs(tmp.path(), 8);
    let barrier = Arc::new(Barrier::new(16));

    let handles: Vec<_> = (0..16)
        .map(|t| {
            let (store, dirs, barrier) = (Arc::clone(&store), dirs.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                // Every thread tries to create every key; exactly one create per database wins.
                let mut created = Vec::new();
                for d in &dirs {
                    match store.create(d) {
                        Ok(key) => created.push((d.clone(), key)),
                        Err(strongbox::keys::StoreError::AlreadyExists { .. }) => {}
                        Err(e) => panic!("thread {t}: {e}"),
                    }
                }
                for _ in 0..20 {
                    for d in &dirs {
                        // A key is readable at every moment after its creation.
                        if store.exists(d).unwrap() {
                            store.load(d).unwrap();
                        }
                    }
                }
                created
            })
        })
        .collect();
    let created: Vec<(PathBuf, DataKey)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(created.len(), dirs.len(), "one winning create per database");
    for (dir, key) in created {
        assert_eq!(
            store
                .load_expecting(&dir, key.id())
                .unwrap()
                .expose_secret(),
            key.expose_secret()
        );
    }
}

/// Rotations back and forth between two master keys race a `put` of a new key: the `put` must
/// never be undone by a rotation that read the key before it and wrote after it.
#[test]
fn a_rotation_never_undoes_a_concurrent_put() {
    let a: Arc<dyn MasterKeyProvider> = Arc::new(InMemory::new(1));
    let b: Arc<dyn MasterKeyProvider> = Arc::new(InMemory::new(2));
    for round in 0..20 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        std::fs::create_dir(&dir).unwrap();
        let store_a = Arc::new(DatabaseKeyStore::new(Arc::clone(&a)).with_previous(Arc::clone(&b)));
        let store_b = Arc::new(DatabaseKeyStore::new(Arc::clone(&b)).with_previous(Arc::clone(&a)));
        store_a.create(&dir).unwrap();
        let replacement = DataKey::generate().unwrap();
        let barrier = Arc::new(Barrier::new(3));

        let rotators: Vec<_> = [
            (Arc::clone(&store_a), Arc::clone(&b)),
            (Arc::clone(&store_b), Arc::clone(&a)),
        ]
        .into_iter()
        .map(|(store, to)| {
            let (dir, barrier) = (dir.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..30 {
                    store.rotate([&dir], &to).unwrap();
                }
            })
        })
        .collect();
        barrier.wait();
        thread::sleep(std::time::Duration::from_micros(200 * round));
        let outcome = store_a.put(&dir, &replacement, true).unwrap();
        assert_eq!(outcome, PutOutcome::Replaced);
        for r in rotators {
            r.join().unwrap();
        }
        let now = store_a.load(&dir).unwrap();
        assert_eq!(
            now.id(),
            replacement.id(),
            "round {round}: the put was lost"
        );
    }
}

/// The child half of `two_processes_rotating_the_same_databases`.
#[test]
fn rotate_child_process() {
    let Some(root) = std::env::var_os("STRONGBOX_TEST_ROTATE_ROOT") else {
        return;
    };
    let root = PathBuf::from(root);
    let old = FileProvider::new(root.join("old.key"));
    let new = FileProvider::new(root.join("new.key"));
    let dirs: Vec<PathBuf> = (0..6).map(|i| root.join(format!("db{i}"))).collect();
    let store = DatabaseKeyStore::new(Arc::new(old))
        .with_previous(Arc::new(FileProvider::new(root.join("new.key"))));
    // Wait for the go file, so that both processes start together.
    while !root.join("go").exists() {
        thread::sleep(std::time::Duration::from_millis(1));
    }
    let report = store.rotate(&dirs, &new).unwrap();
    println!(
        "ROTATED {} ALREADY {}",
        report.rotated.len(),
        report.already_current.len()
    );
}

#[test]
fn two_processes_rotating_the_same_databases() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    common::write_with_mode(&root.join("old.key"), &[1; 32], 0o600);
    common::write_with_mode(&root.join("new.key"), &[2; 32], 0o600);
    let old = Arc::new(FileProvider::new(root.join("old.key")));
    let new = Arc::new(FileProvider::new(root.join("new.key")));
    let dirs = db_dirs(root, 6);
    let store = DatabaseKeyStore::new(old.clone());
    let keys: Vec<DataKey> = dirs.iter().map(|d| store.create(d).unwrap()).collect();

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "rotate_child_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("STRONGBOX_TEST_ROTATE_ROOT", root)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(root.join("go"), b"").unwrap();
    let mut rotated = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let at = text.find("ROTATED ").expect(&text);
        let line = text[at..].lines().next().unwrap();
        let fields: Vec<usize> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
        assert_eq!(fields[0] + fields[1], dirs.len(), "{line}");
        rotated += fields[0];
    }
    // Each database was rotated by exactly one of the two: the other found it already current.
    assert_eq!(rotated, dirs.len());
    let after = DatabaseKeyStore::new(new);
    for (dir, key) in dirs.iter().zip(&keys) {
        assert_eq!(
            after.load_expecting(dir, key.id()).unwrap().expose_secret(),
            key.expose_secret()
        );
        let blob = after.protected_key(dir).unwrap();
        assert!(blob.is_protected_by(after.provider()).unwrap());
    }
}
