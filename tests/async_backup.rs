//! Backups through `bridge_to` / `bridge_from`: a snapshot streamed from the backup thread to a
//! restore thread over a tokio duplex pipe, and a restore whose pump is dropped part way.

use std::fs;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt as _, ReadBuf};

use strongbox::SnapshotBackup;
use strongbox::backup::{
    BackupInput, Channel, MasterKeys, RestoreConfig, bridge_from, bridge_to, restore,
};
use strongbox::keys::FileProvider;

/// A database directory with an incompressible file of `len` bytes, and master keys.
fn database(dir: &Path, len: usize) -> (std::path::PathBuf, Arc<MasterKeys>) {
    let db = dir.join("orders");
    fs::create_dir(&db).unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(db.join("data.db"), data).unwrap();
    let master = FileProvider::create_new(dir.join("master.key")).unwrap();
    (db, Arc::new(MasterKeys::new(Arc::new(master))))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

#[test]
fn a_snapshot_streams_from_backup_to_restore_through_a_duplex_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, keys) = database(tmp.path(), 8 << 20);
    let target = tmp.path().join("restored");
    let (near, far) = tokio::io::duplex(64 << 10);
    let (writer, write_pump) = bridge_to(near);
    let (reader, read_pump) = bridge_from(far);
    let config = RestoreConfig::from_inputs([BackupInput::reader("pipe", reader)], &target);
    let (backup_keys, restore_keys) = (Arc::clone(&keys), Arc::clone(&keys));
    let backup_db = db.clone();
    runtime().block_on(async move {
        let backup = tokio::task::spawn_blocking(move || {
            SnapshotBackup::of_directory(&backup_db).write_to(
                writer,
                &backup_keys,
                Channel::Authenticated,
            )
        });
        let restoring = tokio::task::spawn_blocking(move || {
            restore(&config, &restore_keys, Channel::Authenticated)
        });
        let write = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let mut near = write_pump.await.unwrap();
            near.shutdown().await.unwrap();
        });
        read_pump.await.unwrap();
        write.await.unwrap();
        backup.await.unwrap().unwrap();
        restoring.await.unwrap().unwrap();
    });
    assert!(fs::read(target.join("data.db")).unwrap() == fs::read(db.join("data.db")).unwrap());
}

#[test]
fn a_restore_whose_pump_is_dropped_fails_and_leaves_no_target() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, keys) = database(tmp.path(), 4 << 20);
    let mut upload = Vec::new();
    SnapshotBackup::of_directory(&db)
        .write_to(&mut upload, &keys, Channel::Authenticated)
        .unwrap();
    let target = tmp.path().join("restored");
    // Half of the backup, then a read that never completes: the pump is dropped there.
    let reached = Arc::new(AtomicBool::new(false));
    let input = (&upload[..upload.len() / 2]).chain(Never(Arc::clone(&reached)));
    let (reader, pump) = bridge_from(input);
    let config = RestoreConfig::from_inputs([BackupInput::reader("upload", reader)], &target);
    let restoring = std::thread::spawn(move || restore(&config, &keys, Channel::Authenticated));
    runtime().block_on(async {
        let mut pump = std::pin::pin!(pump);
        std::future::poll_fn(|cx| {
            assert!(
                pump.as_mut().poll(cx).is_pending(),
                "the pump cannot complete"
            );
            if reached.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    });
    let err = restoring.join().unwrap().unwrap_err();
    assert!(!target.exists(), "{err}");
}

/// An `AsyncRead` that is never ready; it records that it was polled.
struct Never(Arc<AtomicBool>);

impl AsyncRead for Never {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.0.store(true, Ordering::SeqCst);
        Poll::Pending
    }
}
