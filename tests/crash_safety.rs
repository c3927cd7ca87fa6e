//! Crash safety: a child process (this test binary, re-executed) changes keys or writes backups in
//! a loop and is killed with SIGKILL at a random moment, many times. After every kill the files
//! on disk must be in a state the library promises: every key loads with the old or the new
//! master key, and no file that looks finished is incomplete.
//!
//! SIGKILL tests the process dying at any instruction; the page cache survives it, so this does
//! not test power loss (that is what the fsyncs are for, and no test here can prove them).
#![cfg(unix)]

mod common;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::InMemory;
use secrecy::ExposeSecret as _;
use strongbox::backup::{Channel, MasterKeys, RestoreConfig, restore};
use strongbox::{
    BackupWriter, DataKey, DatabaseKeyStore, LogicalBackup, MasterKeyProvider, RestoreReader,
    SnapshotBackup, StreamConfig,
};

const CHILD_ENV: &str = "STRONGBOX_TEST_CRASH_SCENARIO";
const ROOT_ENV: &str = "STRONGBOX_TEST_CRASH_ROOT";
const STALE_ENV: &str = "STRONGBOX_TEST_STALE_SCENARIO";
const DATABASES: usize = 5;

fn master_a() -> Arc<dyn MasterKeyProvider> {
    Arc::new(InMemory::new(0xa1))
}
fn master_b() -> Arc<dyn MasterKeyProvider> {
    Arc::new(InMemory::new(0xb2))
}
fn known_key(n: u8) -> DataKey {
    DataKey::from_bytes(&[n; 32]).unwrap()
}
fn backup_key() -> DataKey {
    known_key(0x5b)
}
fn plaintext() -> Vec<u8> {
    (0..150_000u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A tiny xorshift: the kill points need to vary, not to be unpredictable.
struct Rng(u64);
impl Rng {
    fn seeded() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        Rng(t.as_nanos() as u64 | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The child side: runs `scenario` in `root` until killed.
#[test]
fn crash_child() {
    let (Ok(scenario), Some(root)) = (std::env::var(CHILD_ENV), std::env::var_os(ROOT_ENV)) else {
        return;
    };
    let root = PathBuf::from(root);
    let dirs = db_dirs(&root);
    // Tell the parent the loop is about to start, so that kills land in it and not in startup.
    println!("READY");
    std::io::stdout().flush().unwrap();
    match scenario.as_str() {
        "put" => {
            let store = DatabaseKeyStore::new(master_a());
            for i in 0u64.. {
                store
                    .put(&dirs[0], &known_key(1 + (i % 2) as u8), true)
                    .unwrap();
            }
        }
        "create" => {
            let store = DatabaseKeyStore::new(master_a());
            for i in 0u64.. {
                let dir = root.join(format!("new{i}"));
                std::fs::create_dir(&dir).unwrap();
                store.create(&dir).unwrap();
            }
        }
        "rotate" => {
            let to_b = DatabaseKeyStore::new(master_a()).with_previous(master_b());
            let to_a = DatabaseKeyStore::new(master_b()).with_previous(master_a());
            loop {
                to_b.rotate(&dirs, master_b()).unwrap();
                to_a.rotate(&dirs, master_a()).unwrap();
            }
        }
        "backup" => {
            let config = StreamConfig::default().segment_size(4096).unwrap();
            let plain = plaintext();
            for i in 0u64.. {
                let tmp = tempfile::Builder::new()
                    .prefix(".backup.")
                    .suffix(".tmp")
                    .tempfile_in(&root)
                    .unwrap();
                let mut w =
                    BackupWriter::with_config(tmp, &backup_key(), &config, Vec::new()).unwrap();
                for chunk in plain.chunks(10_000) {
                    w.write_all(chunk).unwrap();
                }
                let tmp = w.finish().unwrap();
                tmp.as_file().sync_all().unwrap();
                tmp.persist(root.join(format!("backup-{i}.sbx"))).unwrap();
            }
        }
        "snapshot" => {
            let keys = MasterKeys::new(master_a());
            for i in 0u64.. {
                SnapshotBackup::of_directory(root.join("source"))
                    .write(
                        root.join(format!("snap-{i}")),
                        &keys,
                        Channel::Authenticated,
                    )
                    .unwrap();
            }
        }
        "restore" => {
            let keys = MasterKeys::new(master_a());
            for i in 0u64.. {
                let config =
                    RestoreConfig::new([root.join("snap")], root.join(format!("restored-{i}")));
                restore(&config, &keys, Channel::Authenticated).unwrap();
            }
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn db_dirs(root: &Path) -> Vec<PathBuf> {
    (0..DATABASES)
        .map(|i| root.join(format!("db{i}")))
        .collect()
}

/// Runs the child for `scenario` `kills` times, killing it at a random moment up to `max_delay`
/// after it reported ready, and calls `check` after each kill.
fn kill_repeatedly(
    scenario: &str,
    root: &Path,
    kills: usize,
    max_delay: Duration,
    mut check: impl FnMut(usize),
) {
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::seeded();
    for round in 0..kills {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, scenario)
            .env(ROOT_ENV, root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for READY (the test harness prints a header line first).
        let mut out = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("READY") {
            match out.read(&mut byte).unwrap() {
                0 => panic!(
                    "child exited before it was ready: {}",
                    String::from_utf8_lossy(&seen)
                ),
                _ => seen.push(byte[0]),
            }
        }
        let delay = Duration::from_micros(rng.below(max_delay.as_micros() as u64));
        std::thread::sleep(delay);
        // The child never exits by itself: if it did, it failed.
        if let Some(status) = child.try_wait().unwrap() {
            panic!("round {round}: the child stopped by itself: {status}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        check(round);
    }
}

#[test]
fn killed_while_writing_a_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for d in db_dirs(root) {
        std::fs::create_dir(&d).unwrap();
    }
    let store = DatabaseKeyStore::new(master_a());
    store.put(root.join("db0"), &known_key(1), false).unwrap();
    let allowed = [known_key(1).id(), known_key(2).id()];
    kill_repeatedly("put", root, 12, Duration::from_millis(150), |round| {
        let key = store
            .load(root.join("db0"))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(allowed.contains(&key.id()), "round {round}: an unknown key");
    });

    // Creating keys for new databases: each either has no key file or a complete one.
    kill_repeatedly("create", root, 12, Duration::from_millis(150), |round| {
        for entry in std::fs::read_dir(root).unwrap() {
            let dir = entry.unwrap().path();
            if !dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("new")
            {
                continue;
            }
            if store.exists(&dir).unwrap() {
                store
                    .load(&dir)
                    .unwrap_or_else(|e| panic!("round {round}: {dir:?}: {e}"));
            }
            // The directory may be reused by the next child only if it has no key.
            std::fs::remove_dir_all(&dir).unwrap();
        }
    });
}

#[test]
fn killed_while_rotating_the_master_key() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = DatabaseKeyStore::new(master_a());
    let mut keys = Vec::new();
    for d in db_dirs(root) {
        std::fs::create_dir(&d).unwrap();
        keys.push(store.create(&d).unwrap());
    }
    let either = DatabaseKeyStore::new(master_a()).with_previous(master_b());
    let start = Instant::now();
    kill_repeatedly("rotate", root, 20, Duration::from_millis(100), |round| {
        let mut under_b = 0;
        for (dir, key) in db_dirs(root).iter().zip(&keys) {
            let loaded = either
                .load_expecting(dir, key.id())
                .unwrap_or_else(|e| panic!("round {round}: {dir:?}: {e}"));
            assert_eq!(loaded.expose_secret(), key.expose_secret());
            let blob = either.protected_key(dir).unwrap();
            if !blob.is_protected_by(&*master_a()).unwrap() {
                under_b += 1;
            }
        }
        // Between rounds any mix is allowed; rotating again completes it.
        let _ = under_b;
    });
    // Finishing the interrupted rotation brings every key under one master key.
    either.rotate(db_dirs(root), master_b()).unwrap();
    let after = DatabaseKeyStore::new(master_b());
    for (dir, key) in db_dirs(root).iter().zip(&keys) {
        assert_eq!(after.load(dir).unwrap().id(), key.id());
    }
    let _ = start;
}

#[test]
fn killed_while_writing_a_backup_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let plain = plaintext();
    let mut finished = 0;
    kill_repeatedly("backup", root, 12, Duration::from_millis(200), |round| {
        for entry in std::fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".sbx") {
                // Looks finished: must be complete.
                let mut r = RestoreReader::new(std::fs::File::open(&path).unwrap(), &backup_key())
                    .unwrap_or_else(|e| panic!("round {round}: {name}: {e}"));
                let mut out = Vec::new();
                r.read_to_end(&mut out)
                    .unwrap_or_else(|e| panic!("round {round}: {name}: {e}"));
                assert!(out == plain, "round {round}: {name} has other contents");
                finished += 1;
            } else {
                assert!(
                    name.starts_with(".backup.") && name.ends_with(".tmp"),
                    "{name}"
                );
            }
            // The next child numbers its files from 0 again.
            std::fs::remove_file(&path).unwrap();
        }
    });
    // Not an assertion on timing: over 12 rounds at least one backup normally completes, but the
    // test's claim is about the files that exist, so none is required.
    let _ = finished;
}

/// A database directory with a key and a few files (about 600 KB).
fn source_database(root: &Path) -> (PathBuf, DataKey) {
    let db = root.join("source");
    std::fs::create_dir_all(db.join("data")).unwrap();
    std::fs::write(db.join("data/0001.db"), plaintext().repeat(4)).unwrap();
    std::fs::write(db.join("journal.log"), b"journal").unwrap();
    std::fs::write(db.join("data/empty"), b"").unwrap();
    let key = DatabaseKeyStore::new(master_a()).create(&db).unwrap();
    (db, key)
}

/// Every regular file under `dir`, relative, with its contents.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `restored` holds exactly the database in `source` (its key file aside, which a restore writes
/// anew under the current master key) and the same key.
fn assert_restored(source: &Path, key: &DataKey, restored: &Path, what: &str) {
    let without_key = |t: Vec<(PathBuf, Vec<u8>)>| -> Vec<(PathBuf, Vec<u8>)> {
        t.into_iter()
            .filter(|(p, _)| p != Path::new(strongbox::keys::KEY_FILE_NAME))
            .collect()
    };
    assert!(
        without_key(tree(source)) == without_key(tree(restored)),
        "{what}: the restored files differ"
    );
    let loaded = DatabaseKeyStore::new(master_a())
        .load_expecting(restored, key.id())
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(loaded.expose_secret(), key.expose_secret());
}

#[test]
fn killed_while_writing_a_snapshot_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (db, key) = source_database(root);
    let keys = MasterKeys::new(master_a());
    kill_repeatedly("snapshot", root, 8, Duration::from_millis(300), |round| {
        for entry in std::fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("snap-") {
                // Looks finished: must restore completely.
                let target = root.join("check");
                restore(
                    &RestoreConfig::new([&path], &target),
                    &keys,
                    Channel::Authenticated,
                )
                .unwrap_or_else(|e| panic!("round {round}: {name}: {e}"));
                assert_restored(&db, &key, &target, &format!("round {round}: {name}"));
                std::fs::remove_dir_all(&target).unwrap();
                std::fs::remove_file(&path).unwrap();
            } else if name != "source" {
                // A temporary file of an unfinished backup: hidden, and never a "snap-" name.
                assert!(name.starts_with('.'), "round {round}: {name}");
                std::fs::remove_file(&path).unwrap();
            }
        }
    });
}

#[test]
fn killed_while_restoring() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (db, key) = source_database(root);
    let keys = MasterKeys::new(master_a());
    SnapshotBackup::of_directory(&db)
        .write(root.join("snap"), &keys, Channel::Authenticated)
        .unwrap();
    kill_repeatedly("restore", root, 8, Duration::from_millis(300), |round| {
        for entry in std::fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("restored-") {
                // The target exists only when complete.
                assert_restored(&db, &key, &path, &format!("round {round}: {name}"));
                std::fs::remove_dir_all(&path).unwrap();
            } else if name != "source" && name != "snap" {
                // An unfinished restore: a hidden temporary directory, never the target.
                assert!(name.starts_with(".restored-"), "round {round}: {name}");
                std::fs::remove_dir_all(&path).unwrap();
            }
        }
    });
}

// ----- what killed backups and restores leave behind -----

/// The child side of the stale-file tests: starts a backup (or a restore) and stays in the middle
/// of it until killed.
#[test]
fn stale_child() {
    let (Ok(scenario), Some(root)) = (std::env::var(STALE_ENV), std::env::var_os(ROOT_ENV)) else {
        return;
    };
    let root = PathBuf::from(root);
    let keys = MasterKeys::new(master_a());
    match scenario.as_str() {
        "backup" => {
            let mut w = LogicalBackup::full(root.join("source"))
                .create(root.join("out"), &keys, Channel::Authenticated)
                .unwrap();
            w.write_all(&plaintext()).unwrap();
            println!("READY");
            std::io::stdout().flush().unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
                w.write_all(b"more").unwrap();
            }
        }
        // The backup file is a FIFO that the parent stops feeding half-way: the restore blocks.
        "restore" => {
            let config = RestoreConfig::new([root.join("fifo")], root.join("restored"));
            let _ = restore(&config, &keys, Channel::Authenticated);
            panic!("the restore ended");
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn spawn_stale_child(scenario: &str, root: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stale_child", "--nocapture", "--test-threads=1"])
        .env(STALE_ENV, scenario)
        .env(ROOT_ENV, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_ready(child: &mut std::process::Child) {
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("READY") {
        match out.read(&mut byte).unwrap() {
            0 => panic!("child exited: {}", String::from_utf8_lossy(&seen)),
            _ => seen.push(byte[0]),
        }
    }
}

/// Sorted names in `dir` that start with `prefix`.
fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    out.sort();
    out
}

#[test]
fn the_next_backup_to_a_destination_removes_what_killed_ones_left() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    source_database(root);
    let keys = MasterKeys::new(master_a());
    // A backup to `out`, killed in the middle, leaves a `.out.XXXXXX.partial` file; the next
    // backup to `out` removes it (and, killed too, leaves its own).
    let mut stale: Vec<String> = Vec::new();
    for round in 0..2 {
        let mut child = spawn_stale_child("backup", root);
        wait_ready(&mut child);
        child.kill().unwrap();
        child.wait().unwrap();
        let left = names(root, ".out.");
        assert_eq!(left.len(), 1, "round {round}: {left:?}");
        assert!(left[0].ends_with(".partial") && !stale.contains(&left[0]));
        stale = left;
    }
    // A third one, alive.
    let mut running = spawn_stale_child("backup", root);
    wait_ready(&mut running);
    let live: Vec<String> = names(root, ".out.")
        .into_iter()
        .filter(|n| !stale.contains(n))
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    // Look-alikes that are not a temporary file of `out`.
    let decoys = [
        ".out.abcdef.partial.keep",
        ".out.abcde.partial",
        ".out.abc-ef.partial",
        ".outx.abcdef.partial",
        ".out.abcdef.partialx",
    ];
    for d in decoys {
        std::fs::write(root.join(d), b"not ours").unwrap();
    }
    std::fs::create_dir(root.join(".out.dirdir.partial")).unwrap();

    // The next backup to `out` (here one that fails: `out` exists) removes the stale files,
    // and only them.
    std::fs::write(root.join("out"), b"an older backup").unwrap();
    let err = SnapshotBackup::of_directory(root.join("source"))
        .write(root.join("out"), &keys, Channel::Authenticated)
        .unwrap_err();
    assert!(
        matches!(
            err,
            strongbox::backup::BackupError::DestinationExists { .. }
        ),
        "{err}"
    );
    let mut expected: Vec<String> = decoys.iter().map(|d| d.to_string()).collect();
    expected.push(".out.dirdir.partial".into());
    expected.extend(live.iter().cloned());
    expected.sort();
    assert_eq!(names(root, ".out"), expected);
    // The running backup was not disturbed: it is still running, and its file is still there.
    assert!(
        running.try_wait().unwrap().is_none(),
        "the running backup died"
    );
    assert!(root.join(&live[0]).is_file());

    // Once it is killed too, a backup that succeeds removes it.
    running.kill().unwrap();
    running.wait().unwrap();
    std::fs::remove_file(root.join("out")).unwrap();
    SnapshotBackup::of_directory(root.join("source"))
        .write(root.join("out"), &keys, Channel::Authenticated)
        .unwrap();
    let mut expected: Vec<String> = decoys.iter().map(|d| d.to_string()).collect();
    expected.push(".out.dirdir.partial".into());
    expected.sort();
    assert_eq!(names(root, ".out"), expected);
}

#[test]
fn the_next_restore_to_a_target_removes_what_killed_ones_left() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (db, key) = source_database(root);
    let keys = MasterKeys::new(master_a());
    SnapshotBackup::of_directory(&db)
        .write(root.join("snap"), &keys, Channel::Authenticated)
        .unwrap();
    let snap = std::fs::read(root.join("snap")).unwrap();
    let status = Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(status.success());

    // A restore that stops in the middle: the child reads half the snapshot from the FIFO, then
    // waits for more while the parent holds the FIFO open.
    let mut running = spawn_stale_child("restore", root);
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("fifo"))
        .unwrap();
    fifo.write_all(&snap[..snap.len() / 2]).unwrap();
    let work = || names(root, ".restored.restoring-");
    let deadline = Instant::now() + Duration::from_secs(120);
    while work().is_empty() || !root.join(&work()[0]).join("tree").exists() {
        assert!(Instant::now() < deadline, "the restore never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let live = work();
    assert_eq!(live.len(), 1, "{live:?}");
    // What a restore killed before it made its lock file leaves: an empty directory. And
    // look-alikes that are not working directories of `restored`.
    std::fs::create_dir(root.join(".restored.restoring-Ab12Cd")).unwrap();
    let decoys = [
        ".restored.restoring-Ab12Cde",
        ".restored.restoring-Ab12C",
        ".restoredx.restoring-Ab12Cd",
    ];
    for d in decoys {
        std::fs::create_dir(root.join(d)).unwrap();
        std::fs::write(root.join(d).join("lock"), b"").unwrap();
    }

    // Another restore to the same target leaves the running one alone.
    let config = RestoreConfig::new([root.join("snap")], root.join("restored"));
    restore(&config, &keys, Channel::Authenticated).unwrap();
    assert_restored(&db, &key, &root.join("restored"), "restored");
    let mut expected: Vec<String> = decoys.iter().map(|d| d.to_string()).collect();
    expected.extend(live.iter().cloned());
    expected.sort();
    assert_eq!(names(root, ".restored"), expected);
    assert!(
        running.try_wait().unwrap().is_none(),
        "the running restore died"
    );

    // Killed, it leaves its working directory; the next restore to the target removes it (even
    // one that fails because the target exists).
    running.kill().unwrap();
    running.wait().unwrap();
    drop(fifo);
    assert!(root.join(&live[0]).join("lock").exists());
    let err = restore(&config, &keys, Channel::Authenticated).unwrap_err();
    assert!(
        matches!(err, strongbox::backup::BackupError::TargetExists { .. }),
        "{err}"
    );
    let mut expected: Vec<String> = decoys.iter().map(|d| d.to_string()).collect();
    expected.sort();
    assert_eq!(names(root, ".restored"), expected);
    assert_restored(
        &db,
        &key,
        &root.join("restored"),
        "restored, after the clean-up",
    );
}
