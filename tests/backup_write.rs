//! Backups written to any `Write` (a `Vec`, a pipe) restore exactly as the path forms' backups
//! do, and a backup cancelled through its `Progress` at any point leaves nothing behind.

use std::fs;
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use strongbox::backup::{
    BackupError, Channel, Manifest, MasterKeys, Progress, RestoreConfig, inspect, restore,
};
use strongbox::keys::FileProvider;
use strongbox::{DatabaseKeyStore, LogicalBackup, SnapshotBackup};

mod common;
use common::{Rng, noise, tree};

const AUTH: Channel = Channel::Authenticated;

/// A database with a key, under a master-key file, in a temporary directory; backups go to its
/// `out` directory.
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
        fs::create_dir_all(db.join("data/index")).unwrap();
        fs::write(db.join("data/0001.db"), noise(3 << 20, 1)).unwrap();
        fs::write(db.join("data/index/by-date.idx"), noise(70_000, 2)).unwrap();
        fs::write(db.join("journal"), b"").unwrap();
        DatabaseKeyStore::new(master.clone()).create(&db).unwrap();
        fs::create_dir(tmp.path().join("out")).unwrap();
        Self {
            keys: MasterKeys::new(master),
            tmp,
            db,
        }
    }

    /// The bytes of the database's files.
    fn database_bytes(&self) -> u64 {
        (3 << 20) + 70_000
    }

    fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join("out").join(name)
    }

    /// Saves `bytes` as the backup file `name`.
    fn save(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.out(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    fn restore(&self, files: &[&Path], target: &str) -> Result<PathBuf, BackupError> {
        let target = self.tmp.path().join(target);
        restore(
            &RestoreConfig::new(files.iter().copied(), &target),
            &self.keys,
            AUTH,
        )?;
        Ok(target)
    }

    /// The names in the backups' directory.
    fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.tmp.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// A pipe whose reading end a thread collects; `join` returns what it read.
fn pipe() -> (io::PipeWriter, thread::JoinHandle<Vec<u8>>) {
    let (mut reader, writer) = io::pipe().unwrap();
    let collector = thread::spawn(move || {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        bytes
    });
    (writer, collector)
}

/// The manifest fields that two backups of the same data share (not the id nor the time).
fn same_fields(a: &Manifest, b: &Manifest) {
    assert_eq!(a.kind(), b.kind());
    assert_eq!(a.database_name(), b.database_name());
    assert_eq!(a.compression(), b.compression());
    assert_eq!(a.encryption(), b.encryption());
    assert_eq!(a.key_id(), b.key_id());
    assert!(a.is_encrypted());
}

#[test]
fn a_snapshot_into_a_vec_or_a_pipe_restores_as_the_path_form_does() {
    let fx = Fx::new();
    let by_path = SnapshotBackup::of_directory(&fx.db)
        .write(fx.out("path.sbx"), &fx.keys, AUTH)
        .unwrap();

    let mut vec = Vec::new();
    let in_vec = SnapshotBackup::of_directory(&fx.db)
        .write_to(&mut vec, &fx.keys, AUTH)
        .unwrap();
    let (writer, collector) = pipe();
    let in_pipe = SnapshotBackup::of_directory(&fx.db)
        .write_to(writer, &fx.keys, AUTH)
        .unwrap();
    let piped = collector.join().unwrap();

    let expected = tree(&fx.db);
    let restored = fx.restore(&[&fx.out("path.sbx")], "from-path").unwrap();
    assert_eq!(tree(&restored), expected);
    for (name, bytes, manifest) in [("vec.sbx", &vec, &in_vec), ("pipe.sbx", &piped, &in_pipe)] {
        let file = fx.save(name, bytes);
        let restored = fx.restore(&[&file], name).unwrap();
        assert_eq!(tree(&restored), expected, "{name}");
        let info = inspect(&file).unwrap();
        assert_eq!(info.manifest().backup_id(), manifest.backup_id());
        same_fields(info.manifest(), &by_path);
        assert_eq!(
            fs::metadata(&file).unwrap().len(),
            fs::metadata(fx.out("path.sbx")).unwrap().len(),
            "{name}: a snapshot's size depends on the data only"
        );
    }
}

#[test]
fn a_logical_chain_into_a_vec_and_a_pipe_restores_as_the_path_form_does() {
    let fx = Fx::new();
    let full_export = noise(1 << 20, 3).repeat(2);
    let inc_export = b"{\"id\":2}\n".repeat(5000);

    let path_full = LogicalBackup::full(&fx.db)
        .write_from(&full_export[..], fx.out("path.0"), &fx.keys, AUTH)
        .unwrap();
    let path_inc = LogicalBackup::incremental(&fx.db, path_full.backup_id())
        .write_from(&inc_export[..], fx.out("path.1"), &fx.keys, AUTH)
        .unwrap();

    let mut vec = Vec::new();
    let mut writer = LogicalBackup::full(&fx.db)
        .create_to(&mut vec, &fx.keys, AUTH)
        .unwrap();
    for chunk in full_export.chunks(100_000) {
        writer.write_all(chunk).unwrap();
    }
    let full = writer.finish().unwrap();
    let (pipe_writer, collector) = pipe();
    let mut writer = LogicalBackup::incremental(&fx.db, full.backup_id())
        .create_to(pipe_writer, &fx.keys, AUTH)
        .unwrap();
    writer.write_all(&inc_export).unwrap();
    let inc = writer.finish().unwrap();
    let piped = collector.join().unwrap();

    let chain = [fx.save("vec.0", &vec), fx.save("pipe.1", &piped)];
    let target = fx.restore(&[&chain[0], &chain[1]], "from-writers").unwrap();
    let path_target = fx
        .restore(&[&fx.out("path.0"), &fx.out("path.1")], "from-paths")
        .unwrap();
    let exports = |dir: &Path| tree(dir).into_iter().map(|(_, b)| b).collect::<Vec<_>>();
    assert_eq!(exports(&target), [full_export.clone(), inc_export.clone()]);
    assert_eq!(exports(&target), exports(&path_target));
    for (file, manifest, by_path) in [(&chain[0], &full, &path_full), (&chain[1], &inc, &path_inc)]
    {
        let info = inspect(file).unwrap();
        assert_eq!(info.manifest().backup_id(), manifest.backup_id());
        same_fields(info.manifest(), by_path);
    }
    assert_eq!(inc.previous_backup_id(), Some(full.backup_id()));
}

#[test]
fn progress_counts_the_input() {
    let fx = Fx::new();
    let progress = Progress::new();
    SnapshotBackup::of_directory(&fx.db)
        .progress(progress.clone())
        .write_to(io::sink(), &fx.keys, AUTH)
        .unwrap();
    assert_eq!(progress.bytes(), fx.database_bytes());

    let progress = Progress::new();
    let mut writer = LogicalBackup::full(&fx.db)
        .progress(progress.clone())
        .create(fx.out("l"), &fx.keys, AUTH)
        .unwrap();
    writer.write_all(&noise(1_000_001, 4)).unwrap();
    assert_eq!(progress.bytes(), 1_000_001);
    writer.finish().unwrap();
    assert!(!progress.is_cancelled());
}

fn is_cancellation(err: &io::Error) -> bool {
    matches!(
        err.get_ref().and_then(|e| e.downcast_ref()),
        Some(BackupError::Cancelled)
    )
}

#[test]
fn a_logical_backup_cancelled_inside_the_writing_loop_leaves_nothing() {
    let fx = Fx::new();
    let export = noise(4 << 20, 5);
    for seed in 1..=4 {
        let mut rng = Rng(seed * 0x1234_5678_9abc);
        let cancel_at = rng.below(export.len() as u64) as usize;
        let progress = Progress::new();
        let mut writer = LogicalBackup::full(&fx.db)
            .progress(progress.clone())
            .create(fx.out("cancelled"), &fx.keys, AUTH)
            .unwrap();
        let mut failure = None;
        let mut offset = 0;
        for chunk in export.chunks(1 + rng.below(300_000) as usize) {
            if offset + chunk.len() > cancel_at {
                progress.cancel();
            }
            offset += chunk.len();
            if let Err(e) = writer.write_all(chunk) {
                failure = Some(e);
                break;
            }
        }
        let failure = failure.expect("a write after the cancellation fails");
        assert!(is_cancellation(&failure), "{failure:?}");
        assert!(matches!(writer.finish(), Err(BackupError::Cancelled)));
        assert_eq!(fx.outputs(), Vec::<String>::new(), "seed {seed}");
    }
}

#[test]
fn a_cancelled_or_dropped_writer_leaves_a_backup_every_reader_refuses() {
    let fx = Fx::new();
    let progress = Progress::new();
    let mut vec = Vec::new();
    let mut writer = LogicalBackup::full(&fx.db)
        .progress(progress.clone())
        .create_to(&mut vec, &fx.keys, AUTH)
        .unwrap();
    writer.write_all(&noise(2 << 20, 6)).unwrap();
    progress.cancel();
    assert!(matches!(writer.finish(), Err(BackupError::Cancelled)));
    let cancelled = fx.save("cancelled", &vec);
    let err = fx.restore(&[&cancelled], "never").unwrap_err();
    assert!(matches!(err, BackupError::Truncated { .. }), "{err:?}");

    let mut vec = Vec::new();
    let mut writer = LogicalBackup::full(&fx.db)
        .create_to(&mut vec, &fx.keys, AUTH)
        .unwrap();
    writer.write_all(&noise(2 << 20, 7)).unwrap();
    drop(writer);
    let dropped = fx.save("dropped", &vec);
    let err = fx.restore(&[&dropped], "never").unwrap_err();
    assert!(matches!(err, BackupError::Truncated { .. }), "{err:?}");
    assert!(!fx.tmp.path().join("never").exists());
}

#[test]
fn a_snapshot_cancelled_from_another_thread_leaves_nothing() {
    let fx = Fx::new();
    for seed in 1..=4 {
        let cancel_at = Rng(seed * 0x9876_5432_1fed).below(fx.database_bytes());
        let progress = Progress::new();
        let watcher = progress.clone();
        let ended = Arc::new(AtomicBool::new(false));
        let backup_ended = Arc::clone(&ended);
        let canceller = thread::spawn(move || {
            while watcher.bytes() < cancel_at && !backup_ended.load(Ordering::Relaxed) {
                thread::yield_now();
            }
            watcher.cancel();
        });
        let result = SnapshotBackup::of_directory(&fx.db)
            .progress(progress.clone())
            .write(fx.out("snapshot"), &fx.keys, AUTH);
        ended.store(true, Ordering::Relaxed);
        canceller.join().unwrap();
        match result {
            Err(BackupError::Cancelled) => assert_eq!(fx.outputs(), Vec::<String>::new()),
            // The backup may end before the other thread sees the count: then it is complete.
            Ok(_) => {
                assert_eq!(fx.outputs(), ["snapshot"]);
                let restored = fx.restore(&[&fx.out("snapshot")], "restored").unwrap();
                assert_eq!(tree(&restored), tree(&fx.db));
                fs::remove_dir_all(restored).unwrap();
                fs::remove_file(fx.out("snapshot")).unwrap();
            }
            Err(other) => panic!("seed {seed}: {other:?}"),
        }
    }
}

/// A writer that, once it holds `gate` bytes, waits until the other end has cancelled.
struct Gated {
    written: u64,
    gate: u64,
    reached: Option<mpsc::Sender<()>>,
    resume: mpsc::Receiver<()>,
}

impl Write for Gated {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len() as u64;
        if self.written >= self.gate
            && let Some(reached) = self.reached.take()
        {
            reached.send(()).unwrap();
            self.resume.recv().unwrap();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_snapshot_to_a_writer_cancelled_midway_from_another_thread_stops() {
    let fx = Fx::new();
    for seed in 1..=3 {
        // Before the last segments, which the end of the backup writes.
        let gate = Rng(seed * 0x5555_aaaa_1234).below(fx.database_bytes() - (256 << 10));
        let (reached_tx, reached) = mpsc::channel();
        let (resume, resume_rx) = mpsc::channel();
        let progress = Progress::new();
        let watcher = progress.clone();
        let canceller = thread::spawn(move || {
            reached.recv().unwrap();
            watcher.cancel();
            resume.send(()).unwrap();
        });
        let output = Gated {
            written: 0,
            gate,
            reached: Some(reached_tx),
            resume: resume_rx,
        };
        let err = SnapshotBackup::of_directory(&fx.db)
            .progress(progress.clone())
            .write_to(output, &fx.keys, AUTH)
            .unwrap_err();
        canceller.join().unwrap();
        assert!(
            matches!(err, BackupError::Cancelled),
            "seed {seed}: {err:?}"
        );
        assert!(progress.bytes() < fx.database_bytes(), "seed {seed}");
    }
}

#[test]
fn a_logical_backup_cancelled_from_another_thread_while_reading_the_export_leaves_nothing() {
    /// An export that, after `gate` bytes, waits until the other thread has cancelled.
    struct Export {
        rest: Vec<u8>,
        read: usize,
        gate: usize,
        reached: Option<mpsc::Sender<()>>,
        resume: mpsc::Receiver<()>,
    }
    impl io::Read for Export {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.read >= self.gate
                && let Some(reached) = self.reached.take()
            {
                reached.send(()).unwrap();
                self.resume.recv().unwrap();
            }
            let n = buf.len().min(self.rest.len() - self.read);
            buf[..n].copy_from_slice(&self.rest[self.read..][..n]);
            self.read += n;
            Ok(n)
        }
    }
    let fx = Fx::new();
    let data = noise(3 << 20, 8);
    for seed in 1..=3 {
        let (reached_tx, reached) = mpsc::channel();
        let (resume, resume_rx) = mpsc::channel();
        let progress = Progress::new();
        let watcher = progress.clone();
        let canceller = thread::spawn(move || {
            reached.recv().unwrap();
            watcher.cancel();
            resume.send(()).unwrap();
        });
        let export = Export {
            gate: Rng(seed * 0x0f0f_1234_5678).below(data.len() as u64) as usize,
            rest: data.clone(),
            read: 0,
            reached: Some(reached_tx),
            resume: resume_rx,
        };
        let err = LogicalBackup::full(&fx.db)
            .progress(progress)
            .write_from(export, fx.out("logical"), &fx.keys, AUTH)
            .unwrap_err();
        canceller.join().unwrap();
        assert!(
            matches!(err, BackupError::Cancelled),
            "seed {seed}: {err:?}"
        );
        assert_eq!(fx.outputs(), Vec::<String>::new(), "seed {seed}");
    }
}

#[test]
fn a_backup_cancelled_before_it_starts_writes_nothing() {
    let fx = Fx::new();
    let progress = Progress::new();
    progress.cancel();
    let err = SnapshotBackup::of_directory(&fx.db)
        .progress(progress.clone())
        .write(fx.out("snapshot"), &fx.keys, AUTH)
        .unwrap_err();
    assert!(matches!(err, BackupError::Cancelled), "{err:?}");
    let writer = LogicalBackup::full(&fx.db)
        .progress(progress)
        .create(fx.out("logical"), &fx.keys, AUTH)
        .unwrap();
    assert!(matches!(writer.finish(), Err(BackupError::Cancelled)));
    assert_eq!(fx.outputs(), Vec::<String>::new());
}

#[test]
fn a_failing_output_is_an_output_write_error() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("the connection dropped"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let fx = Fx::new();
    let err = SnapshotBackup::of_directory(&fx.db)
        .write_to(Broken, &fx.keys, AUTH)
        .unwrap_err();
    assert!(
        matches!(&err, BackupError::OutputWrite(e) if e.to_string() == "the connection dropped"),
        "{err:?}"
    );
}
