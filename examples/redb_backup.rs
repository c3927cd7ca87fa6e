//! Logical backups of a live redb database, a full one and an incremental one, restored through
//! [`import_chain`] into a fresh database.
//!
//! The database keeps its key-value pairs in the table `data` and, to know what changed since a
//! backup, a commit counter (`meta`, key `seq`) and a change index (`changes`: one
//! `(seq, key)` entry per key written or deleted by commit `seq`). A writer thread commits
//! the whole time; each backup exports one read transaction, which is a consistent snapshot in
//! redb (readers see one commit and never block the writer).
//!
//! ```sh
//! cargo run --example redb_backup            # a small database
//! cargo run --release --example redb_backup -- 1024   # about 1 GiB, with timings
//! cargo run --release --example redb_backup -- 1024 none   # the same, backups not compressed
//! ```
//!
//! # The export stream (the engine's own format)
//!
//! All integers little-endian. A header: the 8 bytes `REDBEXP1`, `since` (u64: 0 for a full
//! export, else the `seq` of the export it follows) and `seq` (u64: the commit it shows). Then
//! records: `P`, key length (u32), key, value length (u32), value (the key holds this value);
//! or `D`, key length (u32), key (the key is deleted). Then `E`, the end. A full export holds a
//! `P` for every key; an incremental one a record for every key in `changes` after `since`
//! (a key changed twice appears twice, with its value as of `seq` both times, which is
//! harmless on import).
//!
//! Restoring imports every backup of the chain, in order, into one write transaction of a new
//! database file, committed and renamed into place only once [`import_chain`] has returned `Ok`
//! (the end of each backup is authenticated only when it is read, so nothing is kept from a
//! chain that fails). In the backup and the restore no plaintext export touches the disk: it
//! goes from the read transaction into the backup's compression and encryption, and back from
//! the backup into the importer. (For its figures, [`run`] also writes the full export
//! unencrypted to a file, `inventory.export`: the baseline a backup is compared with.)

use std::error::Error;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use strongbox::backup::{
    BackupId, Channel, Compression, EncryptionMode, Manifest, MasterKeys, VerifyConfig,
    import_chain,
};
use strongbox::keys::FileProvider;
use strongbox::{DatabaseKeyStore, LogicalBackup, MasterKeyProvider};

/// The key-value pairs.
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
/// The commit counter, under the key `seq`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `(seq, key)` for every key written or deleted by commit `seq`.
const CHANGES: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("changes");
/// The first bytes of an export.
const MAGIC: &[u8; 8] = b"REDBEXP1";
/// Bytes of value per key.
const VALUE_LEN: usize = 1000;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mib = match args.next() {
        Some(arg) => arg.parse::<u64>()?,
        None => 4,
    };
    let compression = match args.next().as_deref() {
        None | Some("zstd") => Compression::Zstd,
        Some("none") => Compression::None,
        Some(other) => return Err(format!("unknown compression {other:?} (zstd or none)").into()),
    };
    let work = tempfile::tempdir_in(std::env::current_dir()?)?;
    run(work.path(), mib << 20, compression, &mut std::io::stdout())?;
    Ok(())
}

/// What the run found, for the test that runs it.
#[derive(Debug)]
pub struct Outcome {
    /// The commit the full backup shows.
    pub full_seq: u64,
    /// The commit the incremental backup shows.
    pub incremental_seq: u64,
    /// Records in the incremental export.
    pub incremental_records: u64,
    /// Keys in the restored database.
    pub restored_keys: u64,
    /// Whether the restored `data` equals the source's as of the incremental backup.
    pub equal: bool,
    /// How the full backup is encrypted.
    pub encryption: EncryptionMode,
}

/// Builds a database of about `size` bytes in `work`, takes a full and an incremental backup
/// (compressed with `compression`) while a writer commits, restores the chain into a fresh
/// database and compares it with the source as of the last backup, printing the figures to
/// `out`.
pub fn run(
    work: &Path,
    size: u64,
    compression: Compression,
    out: &mut dyn Write,
) -> Result<Outcome, Box<dyn Error>> {
    let master: Arc<dyn MasterKeyProvider> =
        Arc::new(FileProvider::create_new(work.join("master.key"))?);
    let keys = MasterKeys::new(Arc::clone(&master));
    let db_dir = work.join("inventory");
    fs::create_dir(&db_dir)?;
    DatabaseKeyStore::new(master).load_or_create(&db_dir)?;
    let db = Arc::new(open(&db_dir.join("inventory.redb"))?);
    let keys_count = size.div_ceil(VALUE_LEN as u64);
    fill(&db, keys_count)?;
    let writer = Writer::start(Arc::clone(&db), keys_count);
    writer.wait_for_commits(3);

    let full_txn = db.begin_read()?;
    let engine_time = plain_export(&full_txn, &work.join("inventory.export"))?;
    let full_path = work.join("inventory.0.full");
    let backup_start = Instant::now();
    let (full, full_seq, _) = backup(&db_dir, &full_txn, None, &full_path, &keys, compression)?;
    let backup_time = backup_start.elapsed();
    drop(full_txn);

    writer.wait_for_commits(3);
    let last_txn = db.begin_read()?;
    let inc_path = work.join("inventory.1.incremental");
    let (_, incremental_seq, incremental_records) = backup(
        &db_dir,
        &last_txn,
        Some((full.backup_id(), full_seq)),
        &inc_path,
        &keys,
        compression,
    )?;
    writer.stop()?;
    report_figures(out, work, engine_time, backup_time, &full_path)?;

    let restored_path = work.join("inventory-restored.redb");
    restore_chain(&[full_path, inc_path], &restored_path, &keys)?;
    let restored = open(&restored_path)?;
    let (equal, restored_keys) = same_data(&last_txn, &restored.begin_read()?)?;
    writeln!(
        out,
        "restored: full (commit {full_seq}) + incremental (commit {incremental_seq}, \
         {incremental_records} records): {restored_keys} keys, equal to the source: {equal}"
    )?;
    Ok(Outcome {
        full_seq,
        incremental_seq,
        incremental_records,
        restored_keys,
        equal,
        encryption: full.encryption(),
    })
}

/// A logical backup of the read transaction `txn` into the new file `dest`: full, or
/// incremental after `previous` (its backup id and the commit it showed), compressed with
/// `compression`. Returns the manifest, the commit the export shows and its number of records.
pub fn backup(
    db_dir: &Path,
    txn: &ReadTransaction,
    previous: Option<(BackupId, u64)>,
    dest: &Path,
    keys: &MasterKeys,
    compression: Compression,
) -> Result<(Manifest, u64, u64), Box<dyn Error>> {
    let (logical, since) = match previous {
        None => (LogicalBackup::full(db_dir), 0),
        Some((id, seq)) => (LogicalBackup::incremental(db_dir, id), seq),
    };
    let mut writer = logical
        .compression(compression)
        .create(dest, keys, Channel::Authenticated)?;
    let mut buffered = BufWriter::with_capacity(256 << 10, &mut writer);
    let (seq, records) = export(txn, since, &mut buffered)?;
    buffered.into_inner().map_err(|e| e.into_error())?;
    Ok((writer.finish()?, seq, records))
}

/// Writes the export of `txn` (every key if `since` is 0, else the keys changed after commit
/// `since`) to `out`; returns the commit it shows and its number of records.
pub fn export(txn: &ReadTransaction, since: u64, out: &mut impl Write) -> io::Result<(u64, u64)> {
    let data = txn.open_table(DATA).map_err(io::Error::other)?;
    let seq = current_seq(txn)?;
    out.write_all(MAGIC)?;
    out.write_all(&since.to_le_bytes())?;
    out.write_all(&seq.to_le_bytes())?;
    let mut records = 0;
    if since == 0 {
        for entry in data.iter().map_err(io::Error::other)? {
            let (key, value) = entry.map_err(io::Error::other)?;
            write_record(out, key.value(), Some(value.value()))?;
            records += 1;
        }
    } else {
        let changes = txn.open_table(CHANGES).map_err(io::Error::other)?;
        for entry in changes
            .range((since + 1, &[][..])..)
            .map_err(io::Error::other)?
        {
            let (change, _) = entry.map_err(io::Error::other)?;
            let key = change.value().1;
            let value = data.get(key).map_err(io::Error::other)?;
            write_record(out, key, value.as_ref().map(|v| v.value()))?;
            records += 1;
        }
    }
    out.write_all(b"E")?;
    Ok((seq, records))
}

/// The full export of `txn` written unencrypted to the new file `dest` and synced (the
/// baseline of the figures); returns the time it took.
fn plain_export(txn: &ReadTransaction, dest: &Path) -> io::Result<Duration> {
    let start = Instant::now();
    let mut plain = BufWriter::new(File::create_new(dest)?);
    export(txn, 0, &mut plain)?;
    plain.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(start.elapsed())
}

/// The commit `txn` shows.
fn current_seq(txn: &ReadTransaction) -> io::Result<u64> {
    let meta = txn.open_table(META).map_err(io::Error::other)?;
    let seq = meta.get("seq").map_err(io::Error::other)?;
    Ok(seq.map_or(0, |s| s.value()))
}

/// One record: `P` with the value, or `D` without.
fn write_record(out: &mut impl Write, key: &[u8], value: Option<&[u8]>) -> io::Result<()> {
    out.write_all(if value.is_some() { b"P" } else { b"D" })?;
    write_bytes(out, key)?;
    match value {
        Some(value) => write_bytes(out, value),
        None => Ok(()),
    }
}

fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(io::Error::other)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

/// Restores the chain `backups` into the new database file `dest`: every backup imported in
/// order into one write transaction, committed and renamed into place only if the whole chain
/// authenticated.
pub fn restore_chain(
    backups: &[impl AsRef<Path>],
    dest: &Path,
    keys: &MasterKeys,
) -> Result<(), Box<dyn Error>> {
    let dir = dest.parent().ok_or("the destination has no directory")?;
    let temporary = tempfile::Builder::new().suffix(".redb").tempfile_in(dir)?;
    let db = open(temporary.path())?;
    let txn = db.begin_write()?;
    let config = VerifyConfig::new(backups.iter().map(AsRef::as_ref));
    let mut seq = None;
    import_chain(&config, keys, Channel::Authenticated, |_, export| {
        seq = Some(import(&txn, seq, export)?);
        Ok(())
    })?;
    let mut meta = txn.open_table(META)?;
    meta.insert("seq", seq.unwrap_or(0))?;
    drop(meta);
    txn.commit()?;
    drop(db);
    temporary.persist_noclobber(dest)?;
    Ok(())
}

/// Applies one export to `txn`, checking that it follows the export that showed commit
/// `previous` (`None`: it must be a full one); returns the commit it shows.
fn import(txn: &WriteTransaction, previous: Option<u64>, export: &mut dyn Read) -> io::Result<u64> {
    let mut input = BufReader::with_capacity(256 << 10, export);
    let mut magic = [0; 8];
    input.read_exact(&mut magic)?;
    let since = read_u64(&mut input)?;
    let seq = read_u64(&mut input)?;
    if &magic != MAGIC || since != previous.unwrap_or(0) || (previous.is_some() && since == 0) {
        return Err(invalid("not the export that follows the previous one"));
    }
    let mut data = txn.open_table(DATA).map_err(io::Error::other)?;
    loop {
        let mut tag = [0];
        input.read_exact(&mut tag)?;
        match &tag {
            b"P" => {
                let key = read_bytes(&mut input)?;
                let value = read_bytes(&mut input)?;
                data.insert(&key[..], &value[..])
                    .map_err(io::Error::other)?;
            }
            b"D" => {
                data.remove(&read_bytes(&mut input)?[..])
                    .map_err(io::Error::other)?;
            }
            b"E" => break,
            _ => return Err(invalid("an unknown record")),
        }
    }
    if input.read(&mut [0])? != 0 {
        return Err(invalid("bytes after the end of the export"));
    }
    Ok(seq)
}

fn read_u64(input: &mut impl Read) -> io::Result<u64> {
    let mut bytes = [0; 8];
    input.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

fn read_bytes(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0; 4];
    input.read_exact(&mut len)?;
    let mut bytes = vec![0; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Whether `data` is the same in both transactions, and how many keys `b` holds.
fn same_data(a: &ReadTransaction, b: &ReadTransaction) -> Result<(bool, u64), Box<dyn Error>> {
    let (a, b) = (a.open_table(DATA)?, b.open_table(DATA)?);
    let (mut a_iter, mut b_iter) = (a.iter()?, b.iter()?);
    let mut count = 0;
    loop {
        match (a_iter.next().transpose()?, b_iter.next().transpose()?) {
            (None, None) => return Ok((true, count)),
            (Some((ak, av)), Some((bk, bv)))
                if ak.value() == bk.value() && av.value() == bv.value() =>
            {
                count += 1;
            }
            _ => return Ok((false, count)),
        }
    }
}

/// Opens (or creates) the database file at `path`, with a cache of 64 MiB (redb's default is
/// 1 GiB, which a database of that size fills).
fn open(path: &Path) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(64 << 20).create(path)
}

/// Writes `count` keys in one commit (the data the writer then changes).
fn fill(db: &Database, count: u64) -> Result<(), Box<dyn Error>> {
    let txn = db.begin_write()?;
    {
        let mut data = txn.open_table(DATA)?;
        for n in 0..count {
            data.insert(&key(n)[..], &value(n, 0)[..])?;
        }
        txn.open_table(META)?.insert("seq", 1)?;
        txn.open_table(CHANGES)?;
    }
    txn.commit()?;
    Ok(())
}

fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Deterministic, incompressible-looking bytes for key `n` as of commit `seq` (xorshift).
fn value(n: u64, seq: u64) -> Vec<u8> {
    let mut state = (n ^ (seq << 40)) ^ 0x9E37_79B9_7F4A_7C15;
    (0..VALUE_LEN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The writer thread: each commit updates one key, adds one and deletes one.
struct Writer {
    commits: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<(), redb::Error>>,
}

impl Writer {
    fn start(db: Arc<Database>, keys: u64) -> Self {
        let commits = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (commits, stop) = (Arc::clone(&commits), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let n = commits.load(Ordering::SeqCst);
                    change(
                        &db,
                        &[(n * 7919) % keys, keys + n],
                        &[(n * 104_729 + 1) % keys],
                    )?;
                    commits.store(n + 1, Ordering::SeqCst);
                }
                Ok(())
            })
        };
        Self {
            commits,
            stop,
            thread,
        }
    }

    /// Waits until the writer has made `count` more commits.
    fn wait_for_commits(&self, count: u64) {
        let start = self.commits.load(Ordering::SeqCst);
        while self.commits.load(Ordering::SeqCst) < start + count && !self.thread.is_finished() {
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn stop(self) -> Result<(), Box<dyn Error>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .map_err(|_| "the writer thread panicked")??;
        Ok(())
    }
}

/// One commit: writes the keys `put` and deletes the keys `delete`, recording them in
/// `changes` under the new commit number.
fn change(db: &Database, put: &[u64], delete: &[u64]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)?;
    {
        let mut meta = txn.open_table(META)?;
        let seq = meta.get("seq")?.map_or(0, |s| s.value()) + 1;
        meta.insert("seq", seq)?;
        let (mut data, mut changes) = (txn.open_table(DATA)?, txn.open_table(CHANGES)?);
        for &n in put {
            data.insert(&key(n)[..], &value(n, seq)[..])?;
            changes.insert((seq, &key(n)[..]), ())?;
        }
        for &n in delete {
            data.remove(&key(n)[..])?;
            changes.insert((seq, &key(n)[..]), ())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Prints the database's size and both exports' throughput.
fn report_figures(
    out: &mut dyn Write,
    work: &Path,
    engine: Duration,
    strongbox: Duration,
    full_path: &Path,
) -> io::Result<()> {
    let export = fs::metadata(work.join("inventory.export"))?.len();
    let mib = export as f64 / f64::from(1 << 20);
    writeln!(
        out,
        "export of the full read transaction: {mib:.1} MiB; to a plain file: {:.3} s \
         ({:.0} MiB/s); into a strongbox logical backup (encrypted): {:.3} s \
         ({:.0} MiB/s), {} bytes",
        engine.as_secs_f64(),
        mib / engine.as_secs_f64(),
        strongbox.as_secs_f64(),
        mib / strongbox.as_secs_f64(),
        fs::metadata(full_path)?.len(),
    )
}
