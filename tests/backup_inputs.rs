//! Restores, verifications and imports from any `Read` (`BackupInput`), a logical chain
//! streamed member by member into an importer (`import_chain`), errors that name the backup,
//! and progress and cancellation (`with_progress`), through the public API.

use std::fs;
use std::io::{self, Cursor, Read, Write as _};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongbox::backup::{
    BackupError, BackupId, BackupInput, Channel, Compression, Manifest, MasterKeys, Progress,
    RestoreConfig, VerifyConfig, import_chain, inspect, restore, verify,
};
use strongbox::{DataKey, DatabaseKeyStore, LogicalBackup, MasterKeyProvider, SnapshotBackup};

mod common;
use common::{noise, tree};

const AUTH: Channel = Channel::Authenticated;

/// A database `orders` with a key and a few files, and its master keys.
struct Fx {
    tmp: tempfile::TempDir,
    keys: MasterKeys,
    key: DataKey,
    db: PathBuf,
}

impl Fx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let keys = MasterKeys::new(Arc::new(common::InMemory::new(1)));
        let db = tmp.path().join("orders");
        fs::create_dir_all(db.join("data/nested")).unwrap();
        fs::write(db.join("data/0001.db"), noise(150_000, 1)).unwrap();
        fs::write(db.join("data/nested/leaf"), b"leaf").unwrap();
        let key = DatabaseKeyStore::new(Arc::clone(keys.current()))
            .create(&db)
            .unwrap();
        fs::create_dir(tmp.path().join("out")).unwrap();
        Self { tmp, keys, key, db }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Where restores go: a directory that holds nothing else.
    fn out(&self, name: &str) -> PathBuf {
        self.path("out").join(name)
    }

    fn snapshot(&self) -> PathBuf {
        let path = self.path("orders.snapshot");
        SnapshotBackup::of_directory(&self.db)
            .write(&path, &self.keys, AUTH)
            .unwrap();
        path
    }

    /// A full backup and two incrementals (`0`, `1`, `2`), uncompressed, with these exports.
    fn chain(&self, exports: &[Vec<u8>; 3]) -> Vec<PathBuf> {
        let mut previous: Option<BackupId> = None;
        let mut files = Vec::new();
        for (i, export) in exports.iter().enumerate() {
            let builder = match previous {
                None => LogicalBackup::full(&self.db),
                Some(p) => LogicalBackup::incremental(&self.db, p),
            };
            let path = self.path(&i.to_string());
            let manifest = builder
                .compression(Compression::None)
                .write_from(&export[..], &path, &self.keys, AUTH)
                .unwrap();
            previous = Some(manifest.backup_id());
            files.push(path);
        }
        files
    }
}

fn exports() -> [Vec<u8>; 3] {
    [
        noise(100_000, 2),
        noise(200_000, 3),
        b"the last one".to_vec(),
    ]
}

/// The bytes of `path` through a pipe filled by a writer thread.
fn piped(path: &Path) -> (io::PipeReader, std::thread::JoinHandle<()>) {
    let bytes = fs::read(path).unwrap();
    let (reader, mut writer) = io::pipe().unwrap();
    let feeder = std::thread::spawn(move || {
        // The reader may stop early (an error): a broken pipe is expected then.
        let _ = writer.write_all(&bytes);
    });
    (reader, feeder)
}

fn in_memory(path: &Path, name: &str) -> BackupInput {
    BackupInput::reader(name, Cursor::new(fs::read(path).unwrap()))
}

#[test]
fn a_snapshot_read_from_memory_or_a_pipe_restores_and_verifies_like_its_file() {
    let fx = Fx::new();
    let snap = fx.snapshot();
    let from_file = restore(&RestoreConfig::new([&snap], fx.out("file")), &fx.keys, AUTH).unwrap();
    let memory = RestoreConfig::from_inputs([in_memory(&snap, "in memory")], fx.out("memory"));
    let from_memory = restore(&memory, &fx.keys, AUTH).unwrap();
    let (pipe, feeder) = piped(&snap);
    let pipe_config =
        RestoreConfig::from_inputs([BackupInput::reader("pipe", pipe)], fx.out("pipe"));
    let from_pipe = restore(&pipe_config, &fx.keys, AUTH).unwrap();
    feeder.join().unwrap();

    let expected = tree(&fx.out("file"));
    assert!(expected.iter().any(|(p, _)| p == Path::new("data/0001.db")));
    assert!(tree(&fx.out("memory")) == expected, "restored from memory");
    assert!(tree(&fx.out("pipe")) == expected, "restored from a pipe");
    for report in [&from_memory, &from_pipe] {
        assert_eq!(report.manifests, from_file.manifests);
        assert_eq!(report.authentication, from_file.authentication);
        assert_eq!(
            (report.files, report.bytes),
            (from_file.files, from_file.bytes)
        );
        assert!(report.key_stored);
    }

    let by_path = verify(&VerifyConfig::new([&snap]), &fx.keys, AUTH).unwrap();
    let (pipe, feeder) = piped(&snap);
    for input in [
        in_memory(&snap, "in memory"),
        BackupInput::reader("pipe", pipe),
    ] {
        let report = verify(&VerifyConfig::from_inputs([input]), &fx.keys, AUTH).unwrap();
        assert_eq!((report.files, report.bytes), (by_path.files, by_path.bytes));
        assert_eq!(report.authentication, by_path.authentication);
    }
    feeder.join().unwrap();
}

#[test]
fn configurations_with_readers_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<BackupInput>();
    shared::<RestoreConfig>();
    shared::<VerifyConfig>();
}

#[test]
fn a_reader_input_is_read_once() {
    let fx = Fx::new();
    let snap = fx.snapshot();
    let config = VerifyConfig::from_inputs([in_memory(&snap, "upload")]);
    verify(&config, &fx.keys, AUTH).unwrap();
    let err = verify(&config, &fx.keys, AUTH).unwrap_err();
    assert!(
        matches!(&err, BackupError::BackupRead { position: 0, path, .. } if path == Path::new("upload")),
        "{err:?}"
    );
}

#[test]
fn a_chain_is_imported_member_by_member_with_files_pipes_and_memory() {
    let fx = Fx::new();
    let exports = exports();
    let files = fx.chain(&exports);
    let (pipe, feeder) = piped(&files[1]);
    let config = VerifyConfig::from_inputs([
        BackupInput::path(&files[0]),
        BackupInput::reader("pipe", pipe),
        in_memory(&files[2], "memory"),
    ]);
    let mut imported: Vec<(Manifest, Vec<u8>)> = Vec::new();
    let report = import_chain(&config, &fx.keys, AUTH, |manifest, export| {
        let mut bytes = Vec::new();
        export.read_to_end(&mut bytes)?;
        imported.push((manifest.clone(), bytes));
        Ok(())
    })
    .unwrap();
    feeder.join().unwrap();

    let expected: Vec<Manifest> = files
        .iter()
        .map(|f| inspect(f).unwrap().manifest().clone())
        .collect();
    assert_eq!(report.manifests, expected);
    assert_eq!(imported.len(), 3);
    for ((manifest, bytes), (want_manifest, want)) in
        imported.iter().zip(expected.iter().zip(&exports))
    {
        assert_eq!(manifest, want_manifest);
        assert_eq!(bytes, want);
    }
    assert_eq!(report.files, 3);
    let total: usize = exports.iter().map(Vec::len).sum();
    assert_eq!(report.bytes, total as u64);

    // The same chain restored from its files: the same exports, in files.
    let restored = restore(&RestoreConfig::new(&files, fx.out("r")), &fx.keys, AUTH).unwrap();
    for (path, want) in restored.exports.iter().zip(&exports) {
        assert_eq!(&fs::read(path).unwrap(), want);
    }
}

#[test]
fn what_the_importer_leaves_unread_is_still_authenticated() {
    let fx = Fx::new();
    let exports = exports();
    let files = fx.chain(&exports);
    // Member 1's last segment altered: an importer that reads only its first bytes still
    // gets the error, not a success.
    let mut bytes = fs::read(&files[1]).unwrap();
    let last = bytes.len() - 20;
    bytes[last] ^= 1;
    fs::write(&files[1], bytes).unwrap();
    let mut heads = Vec::new();
    let err = import_chain(&VerifyConfig::new(&files), &fx.keys, AUTH, |_, export| {
        let mut head = [0u8; 10];
        export.read_exact(&mut head)?;
        heads.push(head);
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(&err, BackupError::Tampered { position: 1, path, .. } | BackupError::Truncated { position: 1, path } if *path == files[1]),
        "{err:?}"
    );
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[1][..], exports[1][..10]);
}

#[test]
fn an_importer_error_names_the_member() {
    let fx = Fx::new();
    let files = fx.chain(&exports());
    let mut calls = 0;
    let err = import_chain(&VerifyConfig::new(&files), &fx.keys, AUTH, |_, _| {
        calls += 1;
        if calls == 3 {
            return Err(io::Error::other("the engine's disk is full"));
        }
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(&err, BackupError::Import { position: 2, path, source }
            if *path == files[2] && source.to_string() == "the engine's disk is full"),
        "{err:?}"
    );
    let snap = fx.snapshot();
    let err = import_chain(&VerifyConfig::new([&snap]), &fx.keys, AUTH, |_, _| Ok(())).unwrap_err();
    assert!(
        matches!(&err, BackupError::UnexpectedKind { position: 0, path, .. } if *path == snap),
        "{err:?}"
    );
}

/// Member 1 of 3 with a byte of its second segment flipped (its payload spans 4 segments).
fn tamper_segment_1(path: &Path) {
    let info = inspect(path).unwrap();
    let at = info.header().encoded_len() + info.header().segment_size() + 16 + 100;
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_tampered_member_is_named_and_nothing_after_the_change_is_handed_out() {
    let fx = Fx::new();
    let exports = exports();
    let files = fx.chain(&exports);
    tamper_segment_1(&files[1]);
    let tampered = |err: &BackupError, name: &Path| matches!(err, BackupError::Tampered { position: 1, path, segment: Some(1) } if path == name);

    let err = restore(&RestoreConfig::new(&files, fx.out("r")), &fx.keys, AUTH).unwrap_err();
    assert!(tampered(&err, &files[1]), "{err:?}");
    assert!(!fx.out("r").exists());
    let err = verify(&VerifyConfig::new(&files), &fx.keys, AUTH).unwrap_err();
    assert!(tampered(&err, &files[1]), "{err:?}");

    let inputs = files
        .iter()
        .enumerate()
        .map(|(i, f)| in_memory(f, &format!("upload {i}")));
    let mut imported: Vec<Vec<u8>> = Vec::new();
    let err = import_chain(
        &VerifyConfig::from_inputs(inputs),
        &fx.keys,
        AUTH,
        |_, export| {
            imported.push(Vec::new());
            let got = export.read_to_end(imported.last_mut().unwrap());
            // Member 1 fails; the importer swallows the error, the import still fails.
            assert_eq!(got.is_err(), imported.len() == 2);
            Ok(())
        },
    )
    .unwrap_err();
    assert!(tampered(&err, Path::new("upload 1")), "{err:?}");
    assert_eq!(imported.len(), 2);
    assert_eq!(imported[0], exports[0]);
    let segment = inspect(&files[1]).unwrap().header().segment_size();
    assert!(
        imported[1].len() <= segment && imported[1][..] == exports[1][..imported[1].len()],
        "{} bytes of member 1 imported",
        imported[1].len()
    );
    assert!(err.to_string().contains("backup 1 (upload 1)"), "{err}");
}

#[test]
fn a_member_cut_at_a_segment_boundary_is_truncated() {
    let fx = Fx::new();
    let files = fx.chain(&exports());
    let info = inspect(&files[1]).unwrap();
    let cut = info.header().encoded_len() + 2 * (info.header().segment_size() + 16);
    let bytes = fs::read(&files[1]).unwrap();
    assert!(bytes.len() > cut + 16);
    fs::write(&files[1], &bytes[..cut]).unwrap();
    let truncated = |err: &BackupError| matches!(err, BackupError::Truncated { position: 1, path } if *path == files[1]);
    let err = restore(&RestoreConfig::new(&files, fx.out("r")), &fx.keys, AUTH).unwrap_err();
    assert!(truncated(&err), "{err:?}");
    assert!(!fx.out("r").exists());
    let err = import_chain(&VerifyConfig::new(&files), &fx.keys, AUTH, |_, export| {
        io::copy(export, &mut io::sink()).map(drop)
    })
    .unwrap_err();
    assert!(truncated(&err), "{err:?}");
}

#[test]
fn a_wrong_key_and_a_wrong_master_key_name_the_member_and_the_keys() {
    let fx = Fx::new();
    let files = fx.chain(&exports());
    let wrong = DataKey::generate().unwrap();
    let wrong_id = wrong.id();
    let err = verify(&VerifyConfig::new(&files).with_key(wrong), &fx.keys, AUTH).unwrap_err();
    assert!(
        matches!(&err, BackupError::WrongKey { position: 0, path, expected, provided }
            if *path == files[0] && *expected == fx.key.id() && *provided == wrong_id),
        "{err:?}"
    );

    let other: Arc<dyn MasterKeyProvider> = Arc::new(common::InMemory::new(2));
    let elsewhere = MasterKeys::new(Arc::clone(&other));
    let wrapped = fx.keys.current().fingerprint().unwrap().unwrap();
    let tried = other.fingerprint().unwrap().unwrap();
    let config = RestoreConfig::new(&files, fx.out("r"));
    let err = restore(&config, &elsewhere, AUTH).unwrap_err();
    assert!(
        matches!(&err, BackupError::KeyUnavailable {
                position: 0, path, key_id, copies: 1, wrapped_for, tried: t, cause: None
            } if *path == files[0] && *key_id == fx.key.id()
                && wrapped_for[..] == [wrapped] && t[..] == [tried]),
        "{err:?}"
    );
    assert!(!fx.out("r").exists());
}

/// A backup in memory that cancels `progress` once `after` of its bytes were read.
struct CancelAfter {
    inner: Cursor<Vec<u8>>,
    after: u64,
    progress: Progress,
}

impl Read for CancelAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(4096);
        let n = self.inner.read(&mut buf[..len])?;
        if self.inner.position() >= self.after {
            self.progress.cancel();
        }
        Ok(n)
    }
}

fn cancelling(files: &[PathBuf], after: u64, progress: &Progress) -> Vec<BackupInput> {
    let mut before = 0;
    files
        .iter()
        .map(|f| {
            let bytes = fs::read(f).unwrap();
            let len = bytes.len() as u64;
            let input = CancelAfter {
                inner: Cursor::new(bytes),
                after: after.saturating_sub(before),
                progress: progress.clone(),
            };
            before += len;
            BackupInput::reader(f.to_string_lossy().into_owned(), input)
        })
        .collect()
}

#[test]
fn a_cancelled_restore_leaves_no_target_and_no_working_directory() {
    let fx = Fx::new();
    let mut files = fx.chain(&exports());
    let total: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    let mut points = vec![0, 1, 100, total - 1];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..12 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        points.push(x % total);
    }
    for (i, after) in points.into_iter().enumerate() {
        let progress = Progress::new();
        let target = fx.out("r");
        let threads = NonZeroUsize::new(1 + i % 3).unwrap();
        let config = RestoreConfig::from_inputs(cancelling(&files, after, &progress), &target)
            .with_progress(progress.clone())
            .with_threads(threads);
        let err = restore(&config, &fx.keys, AUTH).unwrap_err();
        assert!(
            matches!(err, BackupError::Cancelled),
            "after {after}: {err:?}"
        );
        let left: Vec<_> = fs::read_dir(fx.path("out")).unwrap().collect();
        assert!(left.is_empty(), "after {after}: {left:?}");
    }

    // A snapshot, cancelled half-way through, and by a handle cancelled before it started.
    files = vec![fx.snapshot()];
    let half = fs::metadata(&files[0]).unwrap().len() / 2;
    let progress = Progress::new();
    let config = RestoreConfig::from_inputs(cancelling(&files, half, &progress), fx.out("r"))
        .with_progress(progress.clone());
    assert!(matches!(
        restore(&config, &fx.keys, AUTH),
        Err(BackupError::Cancelled)
    ));
    let stopped = Progress::new();
    stopped.cancel();
    let config = RestoreConfig::new(&files, fx.out("r")).with_progress(stopped.clone());
    assert!(matches!(
        restore(&config, &fx.keys, AUTH),
        Err(BackupError::Cancelled)
    ));
    let config = VerifyConfig::new(&files).with_progress(stopped);
    assert!(matches!(
        verify(&config, &fx.keys, AUTH),
        Err(BackupError::Cancelled)
    ));
    assert_eq!(fs::read_dir(fx.path("out")).unwrap().count(), 0);
}

#[test]
fn cancelled_verifications_and_imports_stop_with_cancelled() {
    let fx = Fx::new();
    let files = fx.chain(&exports());
    let total: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    for after in [10, total / 3, total / 2] {
        let progress = Progress::new();
        let config = VerifyConfig::from_inputs(cancelling(&files, after, &progress))
            .with_progress(progress.clone());
        assert!(matches!(
            verify(&config, &fx.keys, AUTH),
            Err(BackupError::Cancelled)
        ));
        let progress = Progress::new();
        let config = VerifyConfig::from_inputs(cancelling(&files, after, &progress))
            .with_progress(progress.clone());
        let err = import_chain(&config, &fx.keys, AUTH, |_, export| {
            io::copy(export, &mut io::sink()).map(drop)
        })
        .unwrap_err();
        assert!(
            matches!(err, BackupError::Cancelled),
            "after {after}: {err:?}"
        );
    }
}

#[test]
fn progress_counts_every_byte_of_the_backups_once() {
    let fx = Fx::new();
    let files = fx.chain(&exports());
    let total: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    let progress = Progress::new();
    let config = RestoreConfig::new(&files, fx.out("r")).with_progress(progress.clone());
    restore(&config, &fx.keys, AUTH).unwrap();
    assert_eq!(progress.bytes(), total);

    let progress = Progress::new();
    let inputs = files.iter().map(|f| in_memory(f, "memory"));
    let config = VerifyConfig::from_inputs(inputs).with_progress(progress.clone());
    verify(&config, &fx.keys, AUTH).unwrap();
    assert_eq!(progress.bytes(), total);
}

/// The engine's whole path with nothing staged on disk: a snapshot written into a pipe by one
/// thread is restored from the other end as it arrives, and a logical chain written into
/// memory is imported member by member; the results equal the path forms'.
#[test]
fn backups_stream_from_writer_to_restore_and_import_without_a_file() {
    let fx = Fx::new();
    let (reader, mut writer) = io::pipe().unwrap();
    let (db, keys) = (fx.db.clone(), fx.keys.clone());
    let producer = std::thread::spawn(move || {
        SnapshotBackup::of_directory(&db).write_to(&mut writer, &keys, AUTH)
    });
    let config = RestoreConfig::from_inputs([BackupInput::reader("socket", reader)], fx.out("s"));
    let report = restore(&config, &fx.keys, AUTH).unwrap();
    let manifest = producer.join().unwrap().unwrap();
    assert_eq!(report.manifests, vec![manifest]);
    let expected = fx.out("from-file");
    restore(
        &RestoreConfig::new([fx.snapshot()], &expected),
        &fx.keys,
        AUTH,
    )
    .unwrap();
    assert_eq!(tree(&fx.out("s")), tree(&expected));

    let mut previous: Option<BackupId> = None;
    let mut inputs = Vec::new();
    for (i, export) in exports().iter().enumerate() {
        let builder = match previous {
            None => LogicalBackup::full(&fx.db),
            Some(id) => LogicalBackup::incremental(&fx.db, id),
        };
        let mut bytes = Vec::new();
        let mut w = builder.create_to(&mut bytes, &fx.keys, AUTH).unwrap();
        w.write_all(export).unwrap();
        previous = Some(w.finish().unwrap().backup_id());
        inputs.push(BackupInput::reader(
            format!("upload {i}"),
            Cursor::new(bytes),
        ));
    }
    let mut imported = Vec::new();
    import_chain(
        &VerifyConfig::from_inputs(inputs),
        &fx.keys,
        AUTH,
        |m, export| {
            let mut data = Vec::new();
            export.read_to_end(&mut data)?;
            imported.push((m.backup_id(), data));
            Ok(())
        },
    )
    .unwrap();
    let got: Vec<Vec<u8>> = imported.into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, exports().to_vec());
}

/// A backup cut inside a segment (what an interrupted copy looks like) is `Truncated`, naming
/// the member, in restore, verify and import; a change in a segment with data after it stays
/// `Tampered`.
#[test]
fn a_member_cut_inside_a_segment_is_truncated() {
    let fx = Fx::new();
    let files = fx.chain(&exports());
    let info = inspect(&files[1]).unwrap();
    let cut = info.header().encoded_len() + 2 * (info.header().segment_size() + 16) - 1000;
    let bytes = fs::read(&files[1]).unwrap();
    fs::write(&files[1], &bytes[..cut]).unwrap();
    let truncated = |err: &BackupError| matches!(err, BackupError::Truncated { position: 1, path } if *path == files[1]);
    let err = restore(&RestoreConfig::new(&files, fx.out("r")), &fx.keys, AUTH).unwrap_err();
    assert!(truncated(&err), "{err:?}");
    assert!(!fx.out("r").exists());
    let err = verify(&VerifyConfig::new(&files), &fx.keys, AUTH).unwrap_err();
    assert!(truncated(&err), "{err:?}");
    let err = import_chain(&VerifyConfig::new(&files), &fx.keys, AUTH, |_, export| {
        io::copy(export, &mut io::sink()).map(drop)
    })
    .unwrap_err();
    assert!(truncated(&err), "{err:?}");
}
