//! Taking backups: [`SnapshotBackup`] and [`LogicalBackup`].

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::archive::{self, PackError, ReaderEntry, Selection};
use super::files::{BackupFile, Sink, output_error, parent_of};
use super::keys::{MasterKeys, wrap_all, wrap_recovery};
use super::manifest::{BackupId, BackupKind, Compression, MAX_DATABASE_NAME_LEN, Manifest};
use super::policy::{self, BackupEncryptionSettings, Channel, EncryptionMode, PolicyKind};
use super::{BackupError, EXT_MANIFEST, EXT_WRAPPED_KEYS, Progress, store};
use crate::key::DataKey;
use crate::stream::{BackupWriter, Extension, StreamConfig};

/// What every backup builder holds.
struct Common {
    database_dir: PathBuf,
    database_name: Option<String>,
    encryption: Option<BackupEncryptionSettings>,
    compression: Compression,
    stream: StreamConfig,
    progress: Option<Progress>,
    #[cfg(feature = "recipients")]
    recipients: super::Recipients,
    /// A fresh key wrapped only to the recipients and the recovery master keys.
    #[cfg(feature = "recipients")]
    write_only: bool,
}

impl Common {
    fn new(database_dir: PathBuf, compression: Compression) -> Self {
        Self {
            database_dir,
            database_name: None,
            encryption: None,
            compression,
            stream: StreamConfig::default(),
            progress: None,
            #[cfg(feature = "recipients")]
            recipients: super::Recipients::new(),
            #[cfg(feature = "recipients")]
            write_only: false,
        }
    }

    #[cfg(feature = "recipients")]
    fn write_only(&self, kind: BackupKind) -> Result<bool, BackupError> {
        if self.write_only
            && (kind == BackupKind::Snapshot
                || self.encryption.is_some()
                || self.recipients.is_empty())
        {
            return Err(BackupError::InvalidWriteOnly);
        }
        Ok(self.write_only)
    }

    #[cfg(not(feature = "recipients"))]
    fn write_only(&self, _: BackupKind) -> Result<bool, BackupError> {
        Ok(false)
    }

    /// The recipient-slots extension, if there are recipients.
    #[cfg(feature = "recipients")]
    fn slots(&self, key: Option<&DataKey>) -> Result<Option<Extension>, BackupError> {
        if self.recipients.is_empty() {
            return Ok(None);
        }
        let key = key.ok_or(BackupError::RecipientsForUnencryptedBackup)?;
        let slots = super::recipients::wrap_to(key, &self.recipients)?;
        Ok(Some(Extension::new(super::EXT_RECIPIENT_SLOTS, slots)))
    }

    #[cfg(not(feature = "recipients"))]
    fn slots(&self, _: Option<&DataKey>) -> Result<Option<Extension>, BackupError> {
        Ok(None)
    }

    /// The name the manifest records, after checking that the database directory is one.
    fn checked_name(&self) -> Result<String, BackupError> {
        let name = match &self.database_name {
            Some(name) => name.clone(),
            None => self
                .database_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if name.is_empty() || name.len() > MAX_DATABASE_NAME_LEN {
            return Err(BackupError::InvalidDatabaseName);
        }
        let meta = fs::metadata(&self.database_dir).map_err(|source| BackupError::SourceRead {
            path: self.database_dir.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(BackupError::UnsupportedSource {
                path: self.database_dir.clone(),
                reason: "the database directory is not a directory",
            });
        }
        Ok(name)
    }

    /// Applies the policy, opens the output (`open`, called only once the policy allows the
    /// backup), writes the header (manifest, wrapped keys) to it and returns the payload writer.
    /// Errors of the output name `dest`, the output's path if it has one.
    fn start<W: Write>(
        &self,
        kind: BackupKind,
        previous: Option<BackupId>,
        keys: &MasterKeys,
        channel: Channel,
        open: impl FnOnce() -> Result<W, BackupError>,
        dest: Option<&Path>,
    ) -> Result<(Sink<W>, Manifest), BackupError> {
        let name = self.checked_name()?;
        let (database_key, resolved, fresh);
        let (mode, key, wrapped) = if self.write_only(kind)? {
            fresh = DataKey::generate()?;
            let wrapped = wrap_recovery(&fresh, keys)?;
            (EncryptionMode::UseProvidedKey, Some(&fresh), wrapped)
        } else {
            database_key = store::load(&self.database_dir, keys.current())?;
            let policy_kind = match kind {
                BackupKind::Snapshot => PolicyKind::Snapshot,
                _ => PolicyKind::Logical,
            };
            resolved = policy::resolve(
                policy_kind,
                database_key.as_ref(),
                self.encryption.as_ref(),
                channel,
            )?;
            let key = resolved.key();
            let wrapped = key.map(|k| wrap_all(k, keys)).transpose()?;
            (resolved.mode(), key, wrapped)
        };
        let manifest = Manifest::new(
            kind,
            name,
            self.compression,
            mode,
            key.map(DataKey::id),
            previous,
        )?;
        let mut extensions = vec![Extension::new(EXT_MANIFEST, manifest.to_json())];
        extensions.extend(wrapped.map(|w| Extension::new(EXT_WRAPPED_KEYS, w)));
        extensions.extend(self.slots(key)?);
        let out = open()?;
        let fail = |e: io::Error| output_error(e, dest);
        let stream = match key {
            Some(key) => BackupWriter::with_config(out, key, &self.stream, extensions),
            None => BackupWriter::unencrypted(out, &self.stream, extensions),
        }
        .map_err(|e| fail(e.into()))?;
        let sink = Sink::new(stream, self.compression, self.progress.clone()).map_err(fail)?;
        Ok((sink, manifest))
    }
}

macro_rules! common_setters {
    () => {
        /// The database name recorded in the manifest (1 to 255 bytes); by default the database
        /// directory's name.
        pub fn database_name(mut self, name: impl Into<String>) -> Self {
            self.common.database_name = Some(name.into());
            self
        }

        /// The encryption settings. Without them the backup follows the database: an encrypted
        /// database (one with `secret.key.encrypted`) is backed up with its own key, an
        /// unencrypted one is not encrypted.
        pub fn encryption(mut self, settings: BackupEncryptionSettings) -> Self {
            self.common.encryption = Some(settings);
            self
        }

        /// Also wraps the backup's key to these age recipients: each gets a recipient slot in
        /// the header, which `age -d` opens with the recipient's identity (`docs/BACKUP.md`,
        /// section 3a). An unencrypted backup has no key to wrap
        /// ([`BackupError::RecipientsForUnencryptedBackup`]).
        #[cfg(feature = "recipients")]
        pub fn recipients(mut self, recipients: crate::backup::Recipients) -> Self {
            self.common.recipients = recipients;
            self
        }

        /// The compression of the payload (applied before encryption).
        pub fn compression(mut self, compression: Compression) -> Self {
            self.common.compression = compression;
            self
        }

        /// The stream's algorithm and segment size (default: AES-256-GCM, 64 KiB segments).
        pub fn stream_config(mut self, config: StreamConfig) -> Self {
            self.common.stream = config;
            self
        }

        /// Counts the backup's input on `progress` (the bytes read from the database's files
        /// for a snapshot, the bytes of the export for a logical backup, before compression),
        /// and stops the backup with [`BackupError::Cancelled`] once it is cancelled: the
        /// backup checks between blocks of at most 256 KiB of its payload, and when it would
        /// finish. Keep a clone of `progress` to watch and cancel from another thread.
        pub fn progress(mut self, progress: Progress) -> Self {
            self.common.progress = Some(progress);
            self
        }
    };
}

/// A snapshot: a consistent copy of a database directory's files, packed into one backup file.
///
/// The engine decides which files and when (it must keep them still while the snapshot runs):
/// the whole directory ([`of_directory`](Self::of_directory)) or a list of its files
/// ([`of_files`](Self::of_files)). Only directories and regular files are packed; the key file
/// `secret.key.encrypted` never is (the key travels wrapped in the backup header). Members can
/// also be read from a reader ([`with_entry`](Self::with_entry)), such as an engine's
/// consistent copy held in memory, so that no plaintext copy is written to disk. Memory use is
/// constant whatever the size.
///
/// ```
/// use std::sync::Arc;
/// use strongbox::SnapshotBackup;
/// use strongbox::backup::{Channel, MasterKeys};
/// use strongbox::keys::UnixHomeFileProvider;
/// # let tmp = tempfile::tempdir()?;
/// # let db = tmp.path().join("orders");
/// # std::fs::create_dir(&db)?;
/// # std::fs::write(db.join("data.db"), b"rows")?;
/// let keys = MasterKeys::new(Arc::new(UnixHomeFileProvider::at(tmp.path().join("mk/secret.key"))));
/// let manifest = SnapshotBackup::of_directory(&db).write(
///     tmp.path().join("orders.snapshot"),
///     &keys,
///     Channel::Authenticated,
/// )?;
/// assert!(!manifest.is_encrypted()); // the database has no key
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SnapshotBackup<'a> {
    common: Common,
    files: Option<Vec<PathBuf>>,
    entries: Vec<ReaderEntry<'a>>,
}

impl<'a> SnapshotBackup<'a> {
    /// Every file and directory below `database_dir`, except the key store's files at its top
    /// (`secret.key.encrypted`, its lock file and temporaries).
    pub fn of_directory(database_dir: impl Into<PathBuf>) -> Self {
        Self {
            common: Common::new(database_dir.into(), Compression::None),
            files: None,
            entries: Vec::new(),
        }
    }

    /// Only `files`, given relative to `database_dir` (in this order; their directories are
    /// implied). The key store's files at the top (`secret.key.encrypted`, its lock file and
    /// temporaries) are skipped; a file listed twice, however spelt (`a` and `./a`), is
    /// [`BackupError::UnsupportedSource`].
    pub fn of_files<I, P>(database_dir: impl Into<PathBuf>, files: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self {
            common: Common::new(database_dir.into(), Compression::None),
            files: Some(files.into_iter().map(Into::into).collect()),
            entries: Vec::new(),
        }
    }

    /// Adds a member read from `reader` instead of a file: a regular file named `name`
    /// (relative to the database directory) of exactly `len` bytes, packed after the files, in
    /// the order of the calls. `reader` (`Send`, as the builder is) is read when the snapshot
    /// is taken; it must yield `len`
    /// bytes and then end, or the backup fails with [`BackupError::EntryLength`] (the length
    /// is written before the bytes). The name follows the path rule of the files (relative,
    /// no `..`); a key store file's name, or a name another member already has (a file listed
    /// or in the directory, or an entry, or a file above it), is
    /// [`BackupError::UnsupportedSource`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use strongbox::SnapshotBackup;
    /// use strongbox::backup::{Channel, MasterKeys};
    /// use strongbox::keys::FileProvider;
    /// # let tmp = tempfile::tempdir()?;
    /// # let db = tmp.path().join("orders");
    /// # std::fs::create_dir(&db)?;
    /// let keys = MasterKeys::new(Arc::new(FileProvider::create_new(tmp.path().join("master.key"))?));
    /// let copy: Vec<u8> = b"the engine's consistent copy".to_vec();
    ///
    /// let mut upload = Vec::new();
    /// SnapshotBackup::of_files(&db, Vec::<&str>::new())
    ///     .with_entry("data.db", copy.len() as u64, &copy[..])
    ///     .write_to(&mut upload, &keys, Channel::Authenticated)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_entry(
        mut self,
        name: impl Into<PathBuf>,
        len: u64,
        reader: impl Read + Send + 'a,
    ) -> Self {
        self.entries.push(ReaderEntry {
            name: name.into(),
            len,
            reader: Box::new(reader),
        });
        self
    }

    common_setters!();

    /// Takes the snapshot into a new file `destination` (never overwritten) and returns its
    /// manifest.
    ///
    /// The file is written under a temporary name in the same directory ([`BackupFile`]) and
    /// renamed when it is complete and flushed to disk: an error, a cancellation or a crash
    /// never leaves a file at `destination`.
    pub fn write(
        self,
        destination: impl AsRef<Path>,
        keys: &MasterKeys,
        channel: Channel,
    ) -> Result<Manifest, BackupError> {
        let dest = destination.as_ref();
        if self.files.is_none()
            && let (Ok(root), Ok(parent)) = (
                self.common.database_dir.canonicalize(),
                parent_of(dest).canonicalize(),
            )
            && parent.starts_with(&root)
        {
            return Err(BackupError::DestinationInsideSource {
                path: dest.to_path_buf(),
            });
        }
        let (file, manifest) =
            self.write_into(|| BackupFile::create(dest), Some(dest), keys, channel)?;
        file.commit()?;
        Ok(manifest)
    }

    /// Takes the snapshot into `output` (a `Vec<u8>`, a pipe, a socket, an upload; pass
    /// `&mut output` to keep using it) and returns its manifest. The output is flushed at the
    /// end; the backup is the same bytes that [`write`](Self::write) puts in a file.
    ///
    /// After an error or a cancellation the output holds the beginning of a backup, which
    /// every reader refuses as truncated: discard it. A write error of the output is
    /// [`BackupError::OutputWrite`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use strongbox::SnapshotBackup;
    /// use strongbox::backup::{Channel, MasterKeys};
    /// use strongbox::keys::FileProvider;
    /// # let tmp = tempfile::tempdir()?;
    /// # let db = tmp.path().join("orders");
    /// # std::fs::create_dir(&db)?;
    /// # std::fs::write(db.join("data.db"), b"rows")?;
    /// let master = FileProvider::create_new(tmp.path().join("master.key"))?;
    /// let keys = MasterKeys::new(Arc::new(master));
    ///
    /// let mut upload = Vec::new();
    /// let manifest = SnapshotBackup::of_directory(&db).write_to(&mut upload, &keys, Channel::Authenticated)?;
    /// assert!(upload.len() > 4 && manifest.database_name() == "orders");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_to(
        self,
        output: impl Write,
        keys: &MasterKeys,
        channel: Channel,
    ) -> Result<Manifest, BackupError> {
        let (_, manifest) = self.write_into(|| Ok(output), None, keys, channel)?;
        Ok(manifest)
    }

    /// Packs the snapshot into the output `open` makes, and returns the output, flushed.
    fn write_into<W: Write>(
        mut self,
        open: impl FnOnce() -> Result<W, BackupError>,
        dest: Option<&Path>,
        keys: &MasterKeys,
        channel: Channel,
    ) -> Result<(W, Manifest), BackupError> {
        let (sink, manifest) =
            self.common
                .start(BackupKind::Snapshot, None, keys, channel, open, dest)?;
        let selection = match &self.files {
            None => Selection::Directory,
            Some(files) => Selection::Files(files),
        };
        let root = &self.common.database_dir;
        let progress = self.common.progress.as_ref();
        let entries = &mut self.entries;
        let (sink, _) =
            archive::pack(root, selection, entries, sink, progress).map_err(|e| match e {
                PackError::Source { path, source } => BackupError::SourceRead { path, source },
                PackError::Unsupported { path, reason } => {
                    BackupError::UnsupportedSource { path, reason }
                }
                PackError::Changed { path } => BackupError::SourceChanged { path },
                PackError::Length { path, len } => BackupError::EntryLength { path, len },
                PackError::Write(e) => output_error(e, dest),
            })?;
        let out = sink.finish().map_err(|e| output_error(e, dest))?;
        Ok((out, manifest))
    }
}

impl fmt::Debug for SnapshotBackup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotBackup")
            .field("database_dir", &self.common.database_dir)
            .field("files", &self.files)
            .field(
                "entries",
                &self
                    .entries
                    .iter()
                    .map(|e| (&e.name, e.len))
                    .collect::<Vec<_>>(),
            )
            .field("encryption", &self.common.encryption)
            .finish_non_exhaustive()
    }
}

/// A logical backup: a byte stream the engine produces (its own export format), compressed
/// (zstd by default, before encryption) and encrypted into one backup file.
///
/// A **full** backup stands alone; an **incremental** one records the id of the backup it
/// follows, and a restore checks that a chain is complete and in order.
///
/// ```
/// use std::io::Write;
/// use std::sync::Arc;
/// use strongbox::LogicalBackup;
/// use strongbox::backup::{Channel, MasterKeys};
/// use strongbox::keys::UnixHomeFileProvider;
/// # let tmp = tempfile::tempdir()?;
/// # let db = tmp.path().join("orders");
/// # std::fs::create_dir(&db)?;
/// let keys = MasterKeys::new(Arc::new(UnixHomeFileProvider::at(tmp.path().join("mk/secret.key"))));
///
/// let mut full = LogicalBackup::full(&db).create(tmp.path().join("0.full"), &keys, Channel::Authenticated)?;
/// full.write_all(b"export: everything")?;
/// let full = full.finish()?;
///
/// let mut inc = LogicalBackup::incremental(&db, full.backup_id())
///     .create(tmp.path().join("1.inc"), &keys, Channel::Authenticated)?;
/// inc.write_all(b"export: changes")?;
/// assert_eq!(inc.finish()?.previous_backup_id(), Some(full.backup_id()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LogicalBackup {
    common: Common,
    previous: Option<BackupId>,
}

impl LogicalBackup {
    /// A full logical backup of the database in `database_dir` (the directory tells whether the
    /// database is encrypted, and holds its key).
    pub fn full(database_dir: impl Into<PathBuf>) -> Self {
        Self {
            common: Common::new(database_dir.into(), Compression::Zstd),
            previous: None,
        }
    }

    /// An incremental logical backup that follows the backup `previous` (full or incremental).
    pub fn incremental(database_dir: impl Into<PathBuf>, previous: BackupId) -> Self {
        Self {
            common: Common::new(database_dir.into(), Compression::Zstd),
            previous: Some(previous),
        }
    }

    common_setters!();

    /// Write-only: the backup is encrypted with a fresh random key, wrapped only to the
    /// [`recipients`](Self::recipients) and the recovery master keys of the `MasterKeys` (never
    /// the current one), and wiped once the backup is written, so that nothing on the writing
    /// host reads it. The database key is not used (it need not exist); the manifest records
    /// `UseProvidedKey`. Without recipients, or with [`encryption`](Self::encryption) settings,
    /// it is [`BackupError::InvalidWriteOnly`]. Each backup of a chain has its own key.
    #[cfg(feature = "recipients")]
    pub fn write_only(mut self) -> Self {
        self.common.write_only = true;
        self
    }

    /// Starts the backup file `destination` (never overwritten) and returns the writer the
    /// engine writes its export into. **Call [`LogicalBackupWriter::finish`]**: until then the
    /// file has a temporary name ([`BackupFile`]), and dropping the writer deletes it.
    pub fn create(
        self,
        destination: impl AsRef<Path>,
        keys: &MasterKeys,
        channel: Channel,
    ) -> Result<LogicalBackupWriter, BackupError> {
        let dest = destination.as_ref();
        self.start(
            || BackupFile::create(dest),
            Some(dest),
            BackupFile::commit,
            keys,
            channel,
        )
    }

    /// Starts the backup in `output` (a `Vec<u8>`, a pipe, a socket, an upload; pass
    /// `&mut output` to keep using it) and returns the writer the engine writes its export
    /// into. **Call [`LogicalBackupWriter::finish`]**: it ends the backup and flushes `output`.
    /// The backup is the same bytes that [`create`](Self::create) puts in a file.
    ///
    /// After an error, a cancellation, or a writer dropped without `finish`, the output holds
    /// the beginning of a backup, which every reader refuses as truncated: discard it. A write
    /// error of the output is [`BackupError::OutputWrite`] (from a `write` on the writer: the
    /// output's `io::Error` itself).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::sync::Arc;
    /// use strongbox::LogicalBackup;
    /// use strongbox::backup::{Channel, MasterKeys};
    /// use strongbox::keys::FileProvider;
    /// # let tmp = tempfile::tempdir()?;
    /// # let db = tmp.path().join("orders");
    /// # std::fs::create_dir(&db)?;
    /// let master = FileProvider::create_new(tmp.path().join("master.key"))?;
    /// let keys = MasterKeys::new(Arc::new(master));
    ///
    /// let mut upload = Vec::new();
    /// let mut writer = LogicalBackup::full(&db).create_to(&mut upload, &keys, Channel::Authenticated)?;
    /// writer.write_all(b"export: everything")?;
    /// let manifest = writer.finish()?;
    /// assert!(upload.len() > 4 && manifest.previous_backup_id().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_to<W: Write>(
        self,
        output: W,
        keys: &MasterKeys,
        channel: Channel,
    ) -> Result<LogicalBackupWriter<W>, BackupError> {
        self.start(|| Ok(output), None, |_| Ok(()), keys, channel)
    }

    /// The writer of a backup into the output `open` makes; `complete` publishes the output
    /// once the stream is finished.
    fn start<W: Write>(
        self,
        open: impl FnOnce() -> Result<W, BackupError>,
        dest: Option<&Path>,
        complete: fn(W) -> Result<(), BackupError>,
        keys: &MasterKeys,
        channel: Channel,
    ) -> Result<LogicalBackupWriter<W>, BackupError> {
        let kind = match self.previous {
            None => BackupKind::LogicalFull,
            Some(_) => BackupKind::LogicalIncremental,
        };
        let (sink, manifest) = self
            .common
            .start(kind, self.previous, keys, channel, open, dest)?;
        Ok(LogicalBackupWriter {
            sink,
            manifest,
            dest: dest.map(Path::to_path_buf),
            complete,
        })
    }

    /// [`create`](Self::create), copy everything from `export`, [`finish`](LogicalBackupWriter::finish).
    pub fn write_from(
        self,
        mut export: impl Read,
        destination: impl AsRef<Path>,
        keys: &MasterKeys,
        channel: Channel,
    ) -> Result<Manifest, BackupError> {
        let mut writer = self.create(destination, keys, channel)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match export.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(BackupError::ExportRead(source)),
            };
            writer
                .write_all(&buf[..n])
                .map_err(|e| output_error(e, writer.dest.as_deref()))?;
        }
        writer.finish()
    }
}

impl fmt::Debug for LogicalBackup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogicalBackup")
            .field("database_dir", &self.common.database_dir)
            .field("previous", &self.previous)
            .field("encryption", &self.common.encryption)
            .finish_non_exhaustive()
    }
}

/// Receives a logical backup's export. Write everything, then call
/// [`finish`](Self::finish).
///
/// `W` is the output: a [`BackupFile`] (the default) for [`LogicalBackup::create`], the
/// caller's writer for [`LogicalBackup::create_to`]. Dropped without `finish`, the writer
/// deletes an unfinished [`BackupFile`], and leaves in a caller's writer an incomplete backup
/// that every reader refuses as truncated.
///
/// With a [`Progress`] ([`LogicalBackup::progress`]), the bytes written are counted on it, a
/// `write` may accept at most 256 KiB, and once it is cancelled every `write` fails with an
/// `io::Error` whose inner error is [`BackupError::Cancelled`] and `finish` returns that error:
///
/// ```
/// # use std::io::Write;
/// # use strongbox::backup::BackupError;
/// # fn export(writer: &mut impl Write) -> std::io::Result<()> {
/// match writer.write_all(b"rows") {
///     Err(e) if matches!(e.get_ref().and_then(|e| e.downcast_ref()), Some(BackupError::Cancelled)) => {
///         // stop exporting; `finish` reports the cancellation
///     }
///     other => other?,
/// }
/// # Ok(()) }
/// ```
pub struct LogicalBackupWriter<W: Write = BackupFile> {
    sink: Sink<W>,
    manifest: Manifest,
    /// The path errors name (`None`: the caller's writer).
    dest: Option<PathBuf>,
    /// Publishes the output once the stream is finished.
    complete: fn(W) -> Result<(), BackupError>,
}

impl<W: Write> LogicalBackupWriter<W> {
    /// The manifest of the backup being written.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Ends the compression and the stream and flushes the output; a [`BackupFile`] is then
    /// flushed to disk and renamed to its final name. Returns the manifest.
    pub fn finish(self) -> Result<Manifest, BackupError> {
        let out = self
            .sink
            .finish()
            .map_err(|e| output_error(e, self.dest.as_deref()))?;
        (self.complete)(out)?;
        Ok(self.manifest)
    }
}

impl<W: Write> Write for LogicalBackupWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.sink.write(buf)?;
        if let Some(progress) = self.sink.progress() {
            progress.add(n as u64);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

impl<W: Write> fmt::Debug for LogicalBackupWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogicalBackupWriter")
            .field("destination", &self.dest)
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}
