//! A storage engine on tokio: an encrypted snapshot uploaded to an `AsyncWrite` and restored
//! from an `AsyncRead` (`strongbox::backup::bridge_to` / `bridge_from`, the backup code on
//! blocking threads), and a raw stream written with `AsyncBackupWriter` and read back at an
//! offset with `AsyncRestoreReader`'s `AsyncSeek`.
//!
//! ```sh
//! cargo run --example async_backup --features tokio
//! ```
//!
//! Everything happens in a temporary directory that is removed at the end.

use std::error::Error;
use std::fs;
use std::io::{Cursor, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use strongbox::backup::{
    BackupInput, Channel, MasterKeys, RestoreConfig, bridge_from, bridge_to, restore,
};
use strongbox::keys::FileProvider;
use strongbox::stream::{AsyncBackupWriter, AsyncRestoreReader};
use strongbox::{DataKey, SnapshotBackup};

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let work = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().build()?;
    let outcome = runtime.block_on(run(work.path()))?;
    println!("{outcome:?}");
    Ok(())
}

/// What the run produced, for the test that runs it.
#[derive(Debug)]
pub struct Outcome {
    /// Size of the uploaded snapshot.
    pub uploaded: usize,
    /// The restored database file is the original.
    pub restored_identical: bool,
    /// The byte read at offset 1000 of the raw stream, after a seek.
    pub byte_at_1000: u8,
}

/// The whole run, in `work`.
pub async fn run(work: &Path) -> Result<Outcome, BoxError> {
    let db = work.join("orders");
    fs::create_dir(&db)?;
    fs::write(db.join("data.db"), vec![42u8; 100_000])?;
    let master = FileProvider::create_new(work.join("master.key"))?;
    let keys = Arc::new(MasterKeys::new(Arc::new(master)));

    // Upload: the snapshot is packed on a blocking thread, the pump writes it out.
    let (writer, pump) = bridge_to(Vec::new());
    let backup_keys = Arc::clone(&keys);
    let backup = tokio::task::spawn_blocking(move || {
        SnapshotBackup::of_directory(&db).write_to(writer, &backup_keys, Channel::Authenticated)
    });
    let upload = pump.await?;
    backup.await??;

    // Download and restore: the pump reads, the restore verifies and unpacks.
    let target = work.join("restored");
    let (reader, pump) = bridge_from(&upload[..]);
    let config = RestoreConfig::from_inputs([BackupInput::reader("download", reader)], &target);
    let restoring =
        tokio::task::spawn_blocking(move || restore(&config, &keys, Channel::Authenticated));
    pump.await?;
    restoring.await??;
    let restored_identical =
        fs::read(target.join("data.db"))? == fs::read(work.join("orders/data.db"))?;

    // A raw stream, read back from an offset.
    let key = DataKey::generate()?;
    let mut writer = AsyncBackupWriter::new(Vec::new(), &key)?;
    writer
        .write_all(&(0..5000u32).map(|i| i as u8).collect::<Vec<_>>())
        .await?;
    let stream = writer.finish().await?;
    let mut reader = AsyncRestoreReader::new(Cursor::new(stream), &key).await?;
    reader.seek(SeekFrom::Start(1000)).await?;
    let byte_at_1000 = reader.read_u8().await?;

    Ok(Outcome {
        uploaded: upload.len(),
        restored_identical,
        byte_at_1000,
    })
}
