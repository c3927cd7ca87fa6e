//! The whole job end to end, on the embedded default master key:
//!
//! 1. create a small database directory and give it a key (protected by the master key);
//! 2. take an encrypted snapshot, and a full plus an incremental logical backup;
//! 3. restore them into new directories and check they are identical;
//! 4. show that a flipped byte and a wrong key are refused.
//!
//! ```sh
//! cargo run --example backup_and_restore
//! ```
//!
//! The master key is the default one: `$HOME/.strongbox/secret.key` on Unix (created on first
//! use, owner-only), DPAPI for the current user on Windows. Set `STRONGBOX_HOME=/some/dir` to use
//! `/some/dir/secret.key` instead. Everything else happens in a temporary directory that is
//! removed at the end.

use std::error::Error;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongbox::backup::{BackupError, Channel, MasterKeys, RestoreConfig, restore};
use strongbox::{DataKey, DatabaseKeyStore, LogicalBackup, MasterKeyProvider, SnapshotBackup};

fn main() -> Result<(), Box<dyn Error>> {
    let (provider, location) = default_master_key()?;
    println!("master key: {location}");
    let work = tempfile::tempdir()?;
    run(provider, work.path(), &mut std::io::stdout())?;
    Ok(())
}

/// The platform's default master key, or `$STRONGBOX_HOME/secret.key` when that is set.
fn default_master_key() -> Result<(Arc<dyn MasterKeyProvider>, String), Box<dyn Error>> {
    if let Some(dir) = std::env::var_os("STRONGBOX_HOME") {
        let provider =
            strongbox::keys::UnixHomeFileProvider::at(PathBuf::from(dir).join("secret.key"));
        let location = format!("{} (from STRONGBOX_HOME)", provider.path().display());
        return Ok((Arc::new(provider), location));
    }
    #[cfg(not(windows))]
    {
        let provider = strongbox::keys::UnixHomeFileProvider::new()?;
        let location = format!("{} (the default home-file key)", provider.path().display());
        Ok((Arc::new(provider), location))
    }
    #[cfg(windows)]
    {
        Ok((
            strongbox::keys::default_provider()?,
            "DPAPI, protected for the current Windows user".to_string(),
        ))
    }
}

/// What the run produced, for the test that runs it.
#[derive(Debug)]
pub struct Outcome {
    pub snapshot_identical: bool,
    pub logical_identical: bool,
    pub flipped_byte: BackupError,
    pub wrong_key: BackupError,
}

/// Runs the demonstration in `work` with `master` as the current master key, printing to `out`.
pub fn run(
    master: Arc<dyn MasterKeyProvider>,
    work: &Path,
    out: &mut dyn Write,
) -> Result<Outcome, Box<dyn Error>> {
    let keys = MasterKeys::new(Arc::clone(&master));
    let channel = Channel::Authenticated; // the request came over an authenticated channel
    let backups = work.join("backups");
    fs::create_dir(&backups)?;

    // 1. A database directory, with a key of its own.
    let db = work.join("orders");
    fs::create_dir_all(db.join("data/index"))?;
    fs::write(db.join("data/0001.db"), pseudo_random(3 << 20))?;
    fs::write(db.join("data/index/by-date.idx"), pseudo_random(40_000))?;
    fs::write(db.join("journal.log"), b"")?;
    let db_key = DatabaseKeyStore::new(Arc::clone(&master)).create(&db)?;
    writeln!(out, "database:   {} (key {})", db.display(), db_key.id())?;

    // 2. An encrypted snapshot, then a full and an incremental logical backup.
    let snapshot = backups.join("orders.snapshot");
    let manifest = SnapshotBackup::of_directory(&db).write(&snapshot, &keys, channel)?;
    writeln!(
        out,
        "snapshot:   {} ({}, {}, {} bytes)",
        snapshot.display(),
        manifest.kind(),
        manifest.encryption(),
        fs::metadata(&snapshot)?.len()
    )?;
    let export_full = b"{\"id\":1,\"item\":\"apples\"}\n".repeat(10_000);
    let export_inc = b"{\"id\":2,\"item\":\"pears\"}\n".repeat(100);
    let full = LogicalBackup::full(&db).write_from(
        &mut &export_full[..],
        backups.join("orders.0.full"),
        &keys,
        channel,
    )?;
    let inc = LogicalBackup::incremental(&db, full.backup_id()).write_from(
        &mut &export_inc[..],
        backups.join("orders.1.incremental"),
        &keys,
        channel,
    )?;
    writeln!(
        out,
        "logical:    full {} + incremental {} (zstd, {})",
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
    let chain = [
        backups.join("orders.0.full"),
        backups.join("orders.1.incremental"),
    ];
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
