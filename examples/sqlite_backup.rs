//! An online, encrypted backup of a live SQLite database, and its restore.
//!
//! A writer thread commits transactions the whole time (transaction `n` inserts `ROWS_PER_TXN`
//! rows tagged `n`). While it runs, the example takes a consistent copy of the database, streams
//! it through strongbox as a snapshot backup encrypted with the database's key, restores it,
//! and checks that `PRAGMA integrity_check` says `ok` and that the restored database holds
//! exactly the transactions `1..=n` for some `n` (a prefix of what the writer committed), each
//! one whole, with every transaction committed before the backup began among them.
//!
//! ```sh
//! cargo run --example sqlite_backup            # a small database
//! cargo run --release --example sqlite_backup -- 1024   # about 1 GiB, with timings
//! ```
//!
//! # The consistent copy: SQLite's online backup API, in one step
//!
//! The database runs in WAL mode. `sqlite3_backup_step(-1)` copies every page in one call,
//! inside one read transaction: the copy is the database as of one commit, and in WAL mode the
//! writer is never blocked (its commits go to the WAL, which the reader does not see). Copied
//! in several smaller steps instead, a commit by another connection between two steps restarts
//! the copy from the first page, which under a writer that never pauses may never finish.
//!
//! `VACUUM INTO` also copies from one read transaction, and without blocking the writer, but it
//! rebuilds every table and index into the new file: a smaller, defragmented copy for more CPU
//! time, and a different file from the one the engine runs on. The backup API copies the pages
//! as they are, which is what a byte-for-byte restore wants, and it is SQLite's own unencrypted
//! backup, the baseline these figures are compared to.
//!
//! # What touches the disk in plaintext
//!
//! Nothing but the live database and its WAL. The backup API copies into an in-memory
//! database, whose bytes (`sqlite3_serialize`) are the snapshot's one member, `orders.sqlite`,
//! read from memory by [`SnapshotBackup::with_entry`]: the encrypted backup is the only copy
//! that is written anywhere. The price is memory: the copy is held whole, the database's size
//! while it streams, and twice that for the moment `sqlite3_serialize` copies the in-memory
//! database's pages into one buffer (the in-memory database is then closed). A database too
//! large for that needs a reader of the live file's pages inside one read transaction
//! instead.
//!
//! The example also writes SQLite's own unencrypted backup, `engine-copy.sqlite`, beside the
//! database directory: the baseline of the figures, not part of the strongbox backup.
//!
//! The restored directory holds the key and `orders.sqlite`, ready to open.

use std::error::Error;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::serialize::{Data, OwnedData};
use rusqlite::{Connection, MAIN_DB, params};
use strongbox::backup::{
    BackupError, Channel, EncryptionMode, Manifest, MasterKeys, RestoreConfig, restore,
};
use strongbox::keys::FileProvider;
use strongbox::{DatabaseKeyStore, MasterKeyProvider, SnapshotBackup};

/// Rows each transaction of the writer inserts.
pub const ROWS_PER_TXN: u64 = 4;
/// Bytes of payload per row.
const PAYLOAD: usize = 1000;
/// The database's file in its directory.
const DB_FILE: &str = "orders.sqlite";

fn main() -> Result<(), Box<dyn Error>> {
    let mib = match std::env::args().nth(1) {
        Some(arg) => arg.parse::<u64>()?,
        None => 4,
    };
    let work = tempfile::tempdir_in(std::env::current_dir()?)?;
    run(work.path(), mib << 20, &mut std::io::stdout())?;
    Ok(())
}

/// What the run measured and found, for the test that runs it.
#[derive(Debug)]
pub struct Outcome {
    /// What `PRAGMA integrity_check` said about the restored database.
    pub integrity: String,
    /// The last transaction in the restored database (`1..=restored` are all there, whole).
    pub restored: u64,
    /// Transactions committed before the backup began.
    pub committed_before: u64,
    /// The last transaction begun when the backup ended (none after it can be in the backup).
    pub begun_after: u64,
    /// Whether the restored rows are exactly the transactions `1..=restored`, each whole.
    pub is_prefix: bool,
    /// Whether the restored directory's key is the database's key.
    pub same_key: bool,
    /// The names in the database directory after the backup: its key, the database and its
    /// WAL files, and no copy.
    pub database_dir_after: Vec<String>,
    /// The names in the restored directory.
    pub restored_dir: Vec<String>,
    /// How the backup is encrypted.
    pub encryption: EncryptionMode,
}

/// Builds a database of about `size` bytes in `work`, backs it up while a writer commits,
/// restores it and checks it, printing the figures to `out`.
pub fn run(work: &Path, size: u64, out: &mut dyn Write) -> Result<Outcome, Box<dyn Error>> {
    let master: Arc<dyn MasterKeyProvider> =
        Arc::new(FileProvider::create_new(work.join("master.key"))?);
    let keys = MasterKeys::new(Arc::clone(&master));
    let db_dir = work.join("orders");
    fs::create_dir(&db_dir)?;
    let db_key = DatabaseKeyStore::new(Arc::clone(&master)).load_or_create(&db_dir)?;
    let db = open_live(&db_dir.join(DB_FILE))?;
    fill(&db, size.div_ceil(ROWS_PER_TXN * PAYLOAD as u64))?;

    let writer = Writer::start(&db_dir.join(DB_FILE))?;
    writer.wait_for_commits(3);
    let engine = Instant::now();
    online_copy(&db, &work.join("engine-copy.sqlite"))?;
    let engine = (engine.elapsed(), work.join("engine-copy.sqlite"));
    let committed_before = writer.committed();
    let backup_path = work.join("orders.snapshot");
    let (manifest, copy_time, stream_time) = timed_backup(&db, &db_dir, &keys, &backup_path)?;
    let begun_after = writer.begun();
    let database_dir_after = names_in(&db_dir)?;
    let committed_total = writer.stop()?;

    let restored_dir = work.join("orders-restored");
    restore(
        &RestoreConfig::new([&backup_path], &restored_dir),
        &keys,
        Channel::Authenticated,
    )?;
    let restored_names = names_in(&restored_dir)?;
    let streamed = (copy_time, stream_time, restored_dir.join(DB_FILE));
    report_figures(out, engine, streamed, &backup_path)?;
    let restored_key = DatabaseKeyStore::new(master).load(&restored_dir)?;
    let (integrity, restored, is_prefix) = check_restored(&restored_dir.join(DB_FILE))?;
    writeln!(
        out,
        "restored: integrity {integrity}, transactions 1..={restored} (prefix: {is_prefix}); \
         committed before the backup {committed_before}, begun by its end {begun_after}, \
         in all {committed_total}"
    )?;
    Ok(Outcome {
        integrity,
        restored,
        committed_before,
        begun_after,
        is_prefix,
        same_key: restored_key.id() == db_key.id(),
        database_dir_after,
        restored_dir: restored_names,
        encryption: manifest.encryption(),
    })
}

/// The online backup: a consistent copy of `db` in memory ([`consistent_copy`]), streamed
/// into `output` as a snapshot encrypted with the database's key ([`stream`]). Returns the
/// backup's manifest.
pub fn backup(
    db: &Connection,
    db_dir: &Path,
    keys: &MasterKeys,
    output: impl Write,
) -> Result<Manifest, Box<dyn Error>> {
    let copy = consistent_copy(db)?;
    Ok(stream(&copy, db_dir, keys, output)?)
}

/// The database `db` as of one commit, as the bytes of a database file: SQLite's online
/// backup into an in-memory database ([`online_copy_into`]), serialized.
pub fn consistent_copy(db: &Connection) -> rusqlite::Result<OwnedData> {
    let mut copy = Connection::open_in_memory()?;
    online_copy_into(db, &mut copy)?;
    match copy.serialize(MAIN_DB)? {
        Data::Owned(bytes) => Ok(bytes),
        // Only a database of the `memdb` VFS is shared in place; `:memory:` is copied.
        Data::Shared(_) => Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERNAL),
            Some("the in-memory copy was not serialized into a buffer of its own".into()),
        )),
    }
}

/// The copy streamed into `output` as a snapshot of one member, the database's file, encrypted
/// with the database's key.
pub fn stream(
    copy: &[u8],
    db_dir: &Path,
    keys: &MasterKeys,
    output: impl Write,
) -> Result<Manifest, BackupError> {
    // The stream writes whole segments (64 KiB and their tag): no buffering needed.
    SnapshotBackup::of_files(db_dir, Vec::<PathBuf>::new())
        .with_entry(DB_FILE, copy.len() as u64, copy)
        .write_to(output, keys, Channel::Authenticated)
}

/// [`backup`] into the new file `dest`, synced as SQLite syncs its own copy (on an error, the
/// beginning of a backup written is deleted); returns the manifest and the time the copy and
/// the stream took.
fn timed_backup(
    db: &Connection,
    db_dir: &Path,
    keys: &MasterKeys,
    dest: &Path,
) -> Result<(Manifest, Duration, Duration), Box<dyn Error>> {
    let mut upload = File::create_new(dest)?; // any `Write`: a socket, an upload...
    let start = Instant::now();
    let result = consistent_copy(db)
        .map_err(Box::<dyn Error>::from)
        .and_then(|copy| {
            let copied = start.elapsed();
            let manifest = stream(&copy, db_dir, keys, &mut upload)?;
            upload.sync_all()?;
            Ok((manifest, copied, start.elapsed() - copied))
        });
    if result.is_err() {
        let _ = fs::remove_file(dest);
    }
    result
}

/// SQLite's online backup of `db` into the file `dest` (replaced if it exists): the engine's
/// own unencrypted backup, the baseline of the figures.
pub fn online_copy(db: &Connection, dest: &Path) -> rusqlite::Result<()> {
    online_copy_into(db, &mut Connection::open(dest)?)
}

/// SQLite's online backup of `db` into `copy`, in one step: one read transaction, so a copy of
/// the database as of one commit.
pub fn online_copy_into(db: &Connection, copy: &mut Connection) -> rusqlite::Result<()> {
    let backup = Backup::new(db, copy)?;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            // Busy or locked: another connection holds a lock the copy needs; try again.
            _ => thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// The names in the directory `dir`, sorted.
pub fn names_in(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    // The key store's lock file (Windows keeps it while the store is in use): not a copy.
    names.retain(|name| name != ".secret.key.lock");
    names.sort();
    Ok(names)
}

/// Opens the live database in WAL mode, with the table of the writer's transactions.
fn open_live(path: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open(path)?;
    db.busy_timeout(Duration::from_secs(30))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "NORMAL")?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS orders (
             txn INTEGER NOT NULL, row INTEGER NOT NULL, payload BLOB NOT NULL,
             PRIMARY KEY (txn, row))",
    )?;
    Ok(db)
}

/// Inserts the transactions `1..=txns` in one go (the data the writer then adds to).
fn fill(db: &Connection, txns: u64) -> rusqlite::Result<()> {
    let tx = db.unchecked_transaction()?;
    {
        let mut insert =
            tx.prepare("INSERT INTO orders (txn, row, payload) VALUES (?1, ?2, ?3)")?;
        for txn in 1..=txns {
            for row in 0..ROWS_PER_TXN {
                insert.execute(params![txn as i64, row as i64, payload(txn, row)])?;
            }
        }
    }
    tx.commit()
}

/// Deterministic, incompressible-looking bytes for a row (xorshift).
fn payload(txn: u64, row: u64) -> Vec<u8> {
    let mut state = ((txn << 8) | row) ^ 0x9E37_79B9_7F4A_7C15;
    (0..PAYLOAD)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The writer thread: commits one transaction after another until stopped.
struct Writer {
    /// The last transaction whose commit returned.
    committed: Arc<AtomicU64>,
    /// The last transaction begun (committed or not).
    begun: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<rusqlite::Result<()>>,
}

impl Writer {
    /// Starts committing after the last transaction already in the database at `path`.
    fn start(path: &Path) -> rusqlite::Result<Self> {
        let db = open_live(path)?;
        let last: i64 =
            db.query_row("SELECT COALESCE(MAX(txn), 0) FROM orders", [], |r| r.get(0))?;
        let committed = Arc::new(AtomicU64::new(last as u64));
        let begun = Arc::new(AtomicU64::new(last as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (committed, begun) = (Arc::clone(&committed), Arc::clone(&begun));
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let txn = committed.load(Ordering::SeqCst) + 1;
                    begun.store(txn, Ordering::SeqCst);
                    let tx = db.unchecked_transaction()?;
                    for row in 0..ROWS_PER_TXN {
                        tx.execute(
                            "INSERT INTO orders (txn, row, payload) VALUES (?1, ?2, ?3)",
                            params![txn as i64, row as i64, payload(txn, row)],
                        )?;
                    }
                    tx.commit()?;
                    committed.store(txn, Ordering::SeqCst);
                }
                Ok(())
            })
        };
        Ok(Self {
            committed,
            begun,
            stop,
            thread,
        })
    }

    /// The last transaction whose commit returned.
    fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// The last transaction begun: a transaction can be visible to readers before the writer
    /// sees its commit return, so this bounds what a copy can hold.
    fn begun(&self) -> u64 {
        self.begun.load(Ordering::SeqCst)
    }

    /// Waits until the writer has committed `count` transactions of its own.
    fn wait_for_commits(&self, count: u64) {
        let start = self.committed();
        while self.committed() < start + count && !self.thread.is_finished() {
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops the writer and returns the last transaction it committed.
    fn stop(self) -> Result<u64, Box<dyn Error>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .map_err(|_| "the writer thread panicked")??;
        Ok(self.committed.load(Ordering::SeqCst))
    }
}

/// Opens the restored database: what `PRAGMA integrity_check` says, the last transaction, and
/// whether the rows are exactly the transactions `1..=last`, each whole.
fn check_restored(path: &Path) -> rusqlite::Result<(String, u64, bool)> {
    let db = Connection::open(path)?;
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    let mut stmt = db.prepare("SELECT txn, COUNT(*) FROM orders GROUP BY txn ORDER BY txn")?;
    let counts = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })?;
    let (mut last, mut is_prefix) = (0, true);
    for count in counts {
        let (txn, rows) = count?;
        is_prefix &= txn == last + 1 && rows == ROWS_PER_TXN;
        last = txn;
    }
    Ok((integrity, last, is_prefix))
}

/// Prints both backups' size and throughput: `engine` is SQLite's copy (its time and file),
/// `streamed` the strongbox backup (the copy's time, the stream's, and the copy as restored).
fn report_figures(
    out: &mut dyn Write,
    engine: (Duration, PathBuf),
    streamed: (Duration, Duration, PathBuf),
    backup_path: &Path,
) -> std::io::Result<()> {
    let mib = |path: &Path| Ok::<_, std::io::Error>(fs::metadata(path)?.len() as f64 / 1048576.0);
    let (engine_mib, copy_mib) = (mib(&engine.1)?, mib(&streamed.2)?);
    let total = streamed.0 + streamed.1;
    writeln!(
        out,
        "SQLite backup API to a file: {engine_mib:.1} MiB in {:.3} s ({:.0} MiB/s)\n\
         strongbox snapshot: {copy_mib:.1} MiB in {:.3} s ({:.0} MiB/s): backup API copy \
         into memory {:.3} s, encrypted stream {:.3} s ({:.0} MiB/s), {:.1} MiB written",
        engine.0.as_secs_f64(),
        engine_mib / engine.0.as_secs_f64(),
        total.as_secs_f64(),
        copy_mib / total.as_secs_f64(),
        streamed.0.as_secs_f64(),
        streamed.1.as_secs_f64(),
        copy_mib / streamed.1.as_secs_f64(),
        mib(backup_path)?,
    )
}
