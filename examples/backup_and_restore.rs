//! The whole job end to end, as a storage engine does it:
//!
//! 1. create a master-key file (once, at installation), a small database directory, and the
//!    database's key (protected by the master key);
//! 2. take an encrypted snapshot into memory (a `Vec`, as an engine streams it to an upload),
//!    and a full logical backup into a pipe (as to another host) plus an incremental one;
//! 3. restore them into new directories and check they are identical;
//! 4. show that a flipped byte and a wrong key are refused.
//!
//! ```sh
//! cargo run --example backup_and_restore
//! ```
//!
//! Everything happens in a temporary directory that is removed at the end, the master-key file
//! included.

use std::error::Error;
use std::fs;
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use strongbox::backup::{BackupError, Channel, MasterKeys, RestoreConfig, restore};
use strongbox::keys::FileProvider;
use strongbox::{DataKey, DatabaseKeyStore, LogicalBackup, MasterKeyProvider, SnapshotBackup};

fn main() -> Result<(), Box<dyn Error>> {
    let work = tempfile::tempdir()?;
    run(work.path(), &mut std::io::stdout())?;
    Ok(())
}

/// What the run produced, for the test that runs it.
#[derive(Debug)]
pub struct Outcome {
    pub snapshot_identical: bool,
    pub logical_identical: bool,
    pub flipped_byte: BackupError,
    pub wrong_key: BackupError,
}

/// Runs the demonstration in `work`, printing to `out`.
pub fn run(work: &Path, out: &mut dyn Write) -> Result<Outcome, Box<dyn Error>> {
    // 1. A master-key file: a new random key, owner-only (0600) from its first byte, never
    //    replacing a file (`strongbox master-key generate` does the same). Then a database
    //    directory, with a key of its own protected by the master key.
    let master: Arc<dyn MasterKeyProvider> =
        Arc::new(FileProvider::create_new(work.join("master.key"))?);
    writeln!(
        out,
        "master key: {} ({}, owner-only)",
        work.join("master.key").display(),
        master
            .fingerprint()?
            .expect("a key file holds a master key")
    )?;
    let keys = MasterKeys::new(Arc::clone(&master));
    let channel = Channel::Authenticated; // the request came over an authenticated channel
    let db = work.join("orders");
    fs::create_dir_all(db.join("data/index"))?;
    fs::write(db.join("data/0001.db"), pseudo_random(3 << 20))?;
    fs::write(db.join("data/index/by-date.idx"), pseudo_random(40_000))?;
    fs::write(db.join("journal.log"), b"")?;
    let db_key = DatabaseKeyStore::new(Arc::clone(&master)).create(&db)?;
    writeln!(out, "database:   {} (key {})", db.display(), db_key.id())?;

    // 2. An encrypted snapshot into memory, then a full logical backup into a pipe and an
    //    incremental one into a file. Here the upload and the other host are files in
    //    `backups`, for the restores below.
    let backups = work.join("backups");
    fs::create_dir(&backups)?;
    let mut upload = Vec::new();
    let manifest = SnapshotBackup::of_directory(&db).write_to(&mut upload, &keys, channel)?;
    let snapshot = backups.join("orders.snapshot");
    fs::write(&snapshot, &upload)?;
    writeln!(
        out,
        "snapshot:   {} bytes in memory ({}, {})",
        upload.len(),
        manifest.kind(),
        manifest.encryption()
    )?;
    let export_full = b"{\"id\":1,\"item\":\"apples\"}\n".repeat(10_000);
    let export_inc = b"{\"id\":2,\"item\":\"pears\"}\n".repeat(100);
    let (mut receiving, sending) = io::pipe()?;
    let other_host = backups.join("orders.0.full");
    let receiver = {
        let other_host = other_host.clone();
        thread::spawn(move || -> io::Result<()> {
            let mut received = Vec::new();
            receiving.read_to_end(&mut received)?;
            fs::write(other_host, received)
        })
    };
    let mut writer = LogicalBackup::full(&db).create_to(sending, &keys, channel)?;
    writer.write_all(&export_full)?;
    let full = writer.finish()?; // ends the backup and closes the pipe
    receiver.join().expect("the receiving thread")?;
    let inc = LogicalBackup::incremental(&db, full.backup_id()).write_from(
        &export_inc[..],
        backups.join("orders.1.incremental"),
        &keys,
        channel,
    )?;
    writeln!(
        out,
        "logical:    full {} (through a pipe) + incremental {} (zstd, {})",
        full.backup_id(),
        inc.backup_id(),
        inc.encryption()
    )?;

    // 3. Restore both, with no pasted key: the backups carry their key wrapped under the
    //    master key.
    let restored = work.join("orders-restored");
    restore(&RestoreConfig::new([&snapshot], &restored), &keys, channel)?;
    let restored_key = DatabaseKeyStore::new(Arc::clone(&master)).load(&restored)?;
    let snapshot_identical = same_tree(&db, &restored)? && restored_key.id() == db_key.id();
    writeln!(
        out,
        "restored:   {} (identical: {snapshot_identical}, key stored under the master key)",
        restored.display()
    )?;
    let chain = [other_host, backups.join("orders.1.incremental")];
    let report = restore(
        &RestoreConfig::new(&chain, work.join("orders-logical")),
        &keys,
        channel,
    )?;
    let logical_identical = report.exports.len() == 2
        && fs::read(&report.exports[0])? == export_full
        && fs::read(&report.exports[1])? == export_inc;
    writeln!(
        out,
        "restored:   logical chain of 2 (identical: {logical_identical})"
    )?;

    // 4. A flipped byte and a wrong key are refused, and leave nothing behind.
    let flipped = backups.join("flipped.snapshot");
    let mut bytes = fs::read(&snapshot)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&flipped, bytes)?;
    let target = work.join("never-created");
    let flipped_byte = restore(&RestoreConfig::new([&flipped], &target), &keys, channel)
        .expect_err("a flipped byte must be refused");
    writeln!(out, "flipped byte refused: {flipped_byte}")?;
    let wrong = RestoreConfig::new([&snapshot], &target).with_key(DataKey::generate()?);
    let wrong_key = restore(&wrong, &keys, channel).expect_err("a wrong key must be refused");
    writeln!(out, "wrong key refused:    {wrong_key}")?;
    assert!(!target.exists());

    Ok(Outcome {
        snapshot_identical,
        logical_identical,
        flipped_byte,
        wrong_key,
    })
}

/// Deterministic, incompressible-looking bytes (xorshift).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ len as u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Whether two directory trees hold the same files with the same bytes (the key file aside).
fn same_tree(a: &Path, b: &Path) -> std::io::Result<bool> {
    Ok(listing(a)? == listing(b)?)
}

fn listing(root: &Path) -> std::io::Result<Vec<(PathBuf, Option<Vec<u8>>)>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if path == Path::new("secret.key.encrypted") {
                continue;
            }
            if entry.file_type()?.is_dir() {
                out.push((path.clone(), None));
                stack.push(path);
            } else {
                out.push((path.clone(), Some(fs::read(root.join(&path))?)));
            }
        }
    }
    out.sort();
    Ok(out)
}
