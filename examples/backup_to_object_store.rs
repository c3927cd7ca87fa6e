//! A snapshot backup streamed straight to an object store, verified and restored from it,
//! without a temporary file:
//!
//! ```sh
//! # S3 or an S3-compatible store (MinIO, moto): endpoint and credentials from the environment.
//! export AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
//! export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
//! cargo run --example backup_to_object_store --features object-store -- s3://bucket/backups
//! # Azure Blob Storage (or Azurite): the account, its key and, for an emulator, the endpoint.
//! export AZURE_STORAGE_ACCOUNT_NAME=... AZURE_STORAGE_ACCOUNT_KEY=...
//! export AZURE_STORAGE_ENDPOINT=http://127.0.0.1:10000/devstoreaccount1 AZURE_ALLOW_HTTP=true
//! cargo run --example backup_to_object_store --features object-store -- az://container/backups
//! # Or the local file system:
//! cargo run --example backup_to_object_store --features object-store -- file:///tmp/backups
//! ```
//!
//! The argument is a prefix (`docs/OBJECT_STORE.md`); the backup is written below it under a
//! name of its own, never replacing an object. The master key and the database are made up in
//! a temporary directory. `tests/object_stores.rs` runs it against local S3 and Azure servers.

use std::error::Error;
use std::fs;
use std::sync::Arc;

use strongbox::backup::{BackupInput, Channel, MasterKeys, RestoreConfig, restore};
use strongbox::keys::FileProvider;
use strongbox::object::{ObjectReader, ObjectUrl, ObjectWriter, list};
use strongbox::{DatabaseKeyStore, SnapshotBackup};

fn main() -> Result<(), Box<dyn Error>> {
    let prefix = std::env::args()
        .nth(1)
        .ok_or("usage: backup_to_object_store URL-PREFIX")?;
    run(&ObjectUrl::parse(&prefix)?)?;
    Ok(())
}

/// Backs a made-up database up below `prefix`, restores it from there and lists the prefix;
/// the backup's URL.
pub fn run(prefix: &ObjectUrl) -> Result<ObjectUrl, Box<dyn Error>> {
    let work = tempfile::tempdir()?;

    // A master-key file, a database directory and its key.
    let master = Arc::new(FileProvider::create_new(work.path().join("master.key"))?);
    let keys = MasterKeys::new(master.clone());
    let db = work.path().join("orders");
    fs::create_dir(&db)?;
    fs::write(db.join("data.db"), b"the engine's pages")?;
    DatabaseKeyStore::new(master).create(&db)?;

    // The snapshot, streamed up as a multipart upload: the object appears at `finish`.
    let seconds = std::time::UNIX_EPOCH.elapsed()?.as_secs();
    let url = prefix.join(&format!("orders.{seconds}.snapshot"))?;
    let mut upload = ObjectWriter::create(&url)?;
    let manifest =
        SnapshotBackup::of_directory(&db).write_to(&mut upload, &keys, Channel::Authenticated)?;
    upload.finish()?;
    println!("wrote {url} (backup {})", manifest.backup_id());

    // Restored from the object, read with ranged GETs.
    let input = BackupInput::reader(url.to_string(), ObjectReader::open(&url)?);
    let target = work.path().join("restored");
    restore(
        &RestoreConfig::from_inputs([input], &target),
        &keys,
        Channel::Authenticated,
    )?;
    assert_eq!(fs::read(target.join("data.db"))?, b"the engine's pages");
    println!("restored {} from {url}", target.display());

    for entry in list(prefix)? {
        println!("{}  {} bytes", entry.url, entry.size);
    }
    Ok(url)
}
