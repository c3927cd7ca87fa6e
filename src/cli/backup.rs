//! `backup snapshot|logical` and `restore`, and the manifest lines of `inspect`.
//!
//! The CLI runs locally, as the operator, with no network in between: it tells the library that
//! the request came over an authenticated channel ([`Channel::Authenticated`]).

use std::io::{self, Read, Write as _};
use std::path::Path;
use std::sync::Arc;

use strongbox::backup::{
    Authentication, BackupEncryptionSettings, BackupError, BackupInfo, Channel, Compression,
    EncryptionMode, Identities, Manifest, MasterKeys, Recipients, RestoreConfig, Rewrap, printable,
};
use strongbox::key::Fingerprint;
use strongbox::keys::{FileProvider, Scheme};
use strongbox::stream::Header;
use strongbox::{LogicalBackup, MasterKeyProvider, SnapshotBackup};

use super::Context as Ctx;
use super::args::{
    BackupArgs, BackupCommon, BackupKindArgs, LogicalArgs, RestoreArgs, RewrapArgs, SnapshotArgs,
};
use super::crypt::stream_config;
use super::error::{CliError, CliResult, Context as _, describe};
use super::files::InputSpec;
use super::key_input::KeySource;
use super::object::{self, ObjectReader, ObjectUrl, ObjectWriter};
use super::progress::Progress;

/// `strongbox backup`
pub fn backup(ctx: &Ctx, args: BackupArgs) -> CliResult {
    match args.kind {
        BackupKindArgs::Snapshot(args) => snapshot(ctx, args),
        BackupKindArgs::Logical(args) => logical(ctx, args),
        BackupKindArgs::Rewrap(args) => rewrap(ctx, args),
        BackupKindArgs::List(args) => super::folder::list(ctx, args),
    }
}

/// `strongbox backup rewrap`
fn rewrap(ctx: &Ctx, args: RewrapArgs) -> CliResult {
    object::refuse_url(
        &args.file,
        "backup rewrap replaces a local file atomically, which an object store cannot do: \
         download the object, rewrap the copy, upload it under a new name, then delete the old \
         object",
    )?;
    let keys = master_keys(ctx, &args.reading.recovery_master_key_path)?;
    let mut changes = Rewrap::new()
        .add_recipients(recipient_list(&args.recipient, &args.recipients_file)?)
        .with_identities(identities(&args.reading.identity)?);
    if let Some(source) = KeySource::from_backup_args(&args.key, "backup rewrap")? {
        changes = changes.with_key(source.load(|| ctx.provider())?);
    }
    for &index in &args.remove_slot {
        changes = changes.remove_slot(index);
    }
    for path in &args.add_master_key_path {
        changes = changes.add_master_key(Arc::new(FileProvider::new(path)));
    }
    for hex in &args.remove_master_key {
        let fingerprint = Fingerprint::from_hex(hex).map_err(|_| {
            CliError::usage(
                &["backup", "rewrap"],
                "--remove-master-key takes a fingerprint: 32 hexadecimal digits",
            )
        })?;
        changes = changes.remove_master_key(fingerprint);
    }
    if args.remove_database_key_copy || args.add_database_key_copy {
        let current = keys.current();
        if args.add_database_key_copy {
            changes = changes.add_master_key(Arc::clone(current));
        } else if let Some(fingerprint) = current.fingerprint().context(|| "master key")? {
            changes = changes.remove_master_key(fingerprint);
        }
    }
    let report = strongbox::backup::rewrap(&args.file, &changes, &keys)
        .context(|| format!("backup rewrap {}", args.file.display()))?;
    ctx.note(format_args!(
        "rewrapped {}: key {}, {} master-key copies, {} recipient slots",
        printable(&args.file.to_string_lossy()),
        report.key_id,
        report.wrapped_copies,
        report.recipient_slots
    ));
    Ok(())
}

/// `$builder` (a `SnapshotBackup` or a `LogicalBackup`: the same setters, no shared trait) with
/// the options both backup kinds take: stream configuration, encryption, compression and name.
/// Returns early from the calling command on a bad option.
macro_rules! with_common_options {
    ($builder:expr, $ctx:expr, $common:expr, $source:expr) => {{
        let (ctx, common): (&Ctx, &BackupCommon) = ($ctx, $common);
        let mut builder = $builder.stream_config(
            stream_config(common.stream.chacha20, common.stream.segment_size, "backup")?
                .threads(ctx.threads(common.stream.threads.threads)),
        );
        if let Some(encryption) = encryption(ctx, common, $source)? {
            builder = builder.encryption(encryption);
        }
        if let Some(compression) = compression(common) {
            builder = builder.compression(compression);
        }
        if let Some(name) = &common.name {
            builder = builder.database_name(name);
        }
        let recipients = recipients(common)?;
        if !recipients.is_empty() {
            builder = builder.recipients(recipients);
        }
        builder
    }};
}

fn snapshot(ctx: &Ctx, args: SnapshotArgs) -> CliResult {
    let common = &args.common;
    let source = KeySource::from_backup_args(&common.key, "backup")?;
    let builder = with_common_options!(
        SnapshotBackup::of_directory(&args.dir),
        ctx,
        common,
        source.as_ref()
    );
    let keys = master_keys(ctx, &common.recovery_master_key_path)?;
    let manifest = match object::url_of(&common.output)? {
        None => builder.write(&common.output, &keys, Channel::Authenticated),
        Some(url) => match url.local_path() {
            // A local file, refused inside the directory being backed up as a local -o is.
            Some(path) => builder.write(&path, &keys, Channel::Authenticated),
            None => {
                let mut upload = ObjectWriter::create(&url).context(|| "backup snapshot")?;
                let manifest = builder.write_to(&mut upload, &keys, Channel::Authenticated);
                manifest.and_then(|manifest| finish_upload(upload).map(|()| manifest))
            }
        },
    }
    .context(|| "backup snapshot")?;
    report_backup(ctx, &manifest, &common.output);
    Ok(())
}

fn logical(ctx: &Ctx, args: LogicalArgs) -> CliResult {
    let common = &args.common;
    let source = KeySource::from_backup_args(&common.key, "backup")?;
    let input = InputSpec::of(args.input.as_deref())?;
    if source.as_ref().is_some_and(KeySource::uses_stdin) && input.is_stdin() {
        return Err(CliError::usage(
            &["backup", "logical"],
            "--key - reads the key from stdin, so the export must come from a file (give INPUT)",
        ));
    }
    let builder = match &args.incremental_after {
        None => LogicalBackup::full(&args.dir),
        Some(previous) if super::folder::is_folder(previous) => {
            LogicalBackup::incremental(&args.dir, super::folder::chain_end(ctx, previous)?)
        }
        Some(previous) => {
            let info = match object::url_of(previous)? {
                None => strongbox::backup::inspect(previous),
                Some(url) => inspect_object(&url),
            };
            let info = info.context(|| format!("--incremental-after {}", previous.display()))?;
            LogicalBackup::incremental(&args.dir, info.manifest().backup_id())
        }
    };
    let mut builder = with_common_options!(builder, ctx, common, source.as_ref());
    if args.write_only {
        builder = builder.write_only();
    }
    let keys = master_keys(ctx, &common.recovery_master_key_path)?;
    let input = input.open()?;
    let progress = Progress::new(ctx.quiet(), input.len, "backing up");
    let mut export = progress.wrap(input.reader);
    let manifest = match object::url_of(&common.output)? {
        None => builder.write_from(&mut export, &common.output, &keys, Channel::Authenticated),
        Some(url) => {
            let mut upload = ObjectWriter::create(&url).context(|| "backup logical")?;
            let manifest = logical_to(builder, &mut export, &mut upload, &keys);
            manifest.and_then(|manifest| finish_upload(upload).map(|()| manifest))
        }
    }
    .context(|| format!("backup logical (export from {})", input.name))?;
    progress.finish();
    report_backup(ctx, &manifest, &common.output);
    Ok(())
}

/// The logical backup of `export` into `upload` (`LogicalBackup::write_from` for an output
/// that is not a file).
fn logical_to(
    builder: LogicalBackup,
    export: &mut impl Read,
    upload: &mut ObjectWriter,
    keys: &MasterKeys,
) -> Result<Manifest, BackupError> {
    let mut writer = builder.create_to(upload, keys, Channel::Authenticated)?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match export.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BackupError::ExportRead(e)),
        };
        writer
            .write_all(&buf[..n])
            .map_err(BackupError::OutputWrite)?;
    }
    writer.finish()
}

/// Completes the upload of a backup: the object appears now, or never.
fn finish_upload(upload: ObjectWriter) -> Result<(), BackupError> {
    upload
        .finish()
        .map_err(|e| BackupError::OutputWrite(e.into()))
}

/// The description of the backup object `url` names, from its header alone: not
/// authenticated (`strongbox::backup::inspect` of an object).
pub fn inspect_object(url: &ObjectUrl) -> Result<BackupInfo, BackupError> {
    let name = url.to_string();
    let reader = ObjectReader::open(url).map_err(|e| BackupError::BackupRead {
        position: 0,
        path: name.clone().into(),
        source: e.into(),
    })?;
    strongbox::backup::inspect_reader(name, reader)
}

/// `strongbox restore`
pub fn restore(ctx: &Ctx, args: RestoreArgs) -> CliResult {
    let source = KeySource::from_backup_args(&args.key, "restore")?;
    let (names, inputs) = super::folder::backup_inputs(ctx, &args.backups, "restore")?;
    let mut config = RestoreConfig::from_inputs(inputs, &args.to)
        .with_threads(ctx.threads(args.threads.threads));
    if let Some(source) = &source {
        config = config.with_key(source.load(|| ctx.provider())?);
    }
    if args.reading.allow_unauthenticated_members {
        config = config.dangerously_allow_unauthenticated_members();
    }
    if let Some(ratio) = args.reading.max_expansion_ratio {
        config = config.with_max_expansion_ratio((ratio > 0).then_some(ratio));
    }
    config = config.with_identities(identities(&args.reading.identity)?);
    let keys = master_keys(ctx, &args.reading.recovery_master_key_path)?;
    let report =
        strongbox::backup::restore(&config, &keys, Channel::Authenticated).map_err(|err| {
            CliError::fail(format!("restore: {}{}", describe(&err), option_for(&err)))
        })?;
    ctx.note(format_args!(
        "restored {} backup(s) into {}: {} file(s), {} bytes{}",
        report.manifests.len(),
        printable(&report.target_dir.to_string_lossy()),
        report.files,
        report.bytes,
        if report.key_stored {
            "; the database key is stored under the current master key"
        } else {
            ""
        }
    ));
    report_authentication(ctx, &names, &report.authentication);
    for export in &report.exports {
        ctx.note(format_args!(
            "export to import: {}",
            printable(&export.to_string_lossy())
        ));
    }
    Ok(())
}

/// The `restore` option that lifts a refusal the operator may override, as text to append to
/// the error (the library's message describes the option, not the CLI's name for it).
pub fn option_for(err: &BackupError) -> &'static str {
    match err {
        BackupError::IntegrityOnlyMember { .. } => "; option: --allow-unauthenticated-members",
        BackupError::ExpansionLimit { .. } => "; option: --max-expansion-ratio N (0: no limit)",
        _ => "",
    }
}

/// One line per restored backup: the key that authenticated it, or (a warning, shown even with
/// `--quiet`) integrity tags only.
fn report_authentication(ctx: &Ctx, files: &[String], auth: &[Authentication]) {
    for (position, (file, auth)) in files.iter().zip(auth).enumerate() {
        let file = printable(file).into_owned();
        match auth {
            Authentication::Key(key_id) => ctx.note(format_args!(
                "backup {position} ({file}): authenticated by key {key_id}"
            )),
            _ => ctx.warn(format_args!(
                "backup {position} ({file}): NOT authenticated (not encrypted): only checked \
                 against corruption by integrity tags"
            )),
        }
    }
}

/// The encryption settings from `--encryption` and the key options; `None`: follow the database.
fn encryption(
    ctx: &Ctx,
    common: &BackupCommon,
    source: Option<&KeySource>,
) -> CliResult<Option<BackupEncryptionSettings>> {
    let mode = match common.encryption.as_deref() {
        None if source.is_some() => EncryptionMode::UseProvidedKey,
        None => return Ok(None),
        Some("none") => EncryptionMode::None,
        Some("database-key") => EncryptionMode::UseDatabaseKey,
        Some("provided-key") => EncryptionMode::UseProvidedKey,
        Some(other) => {
            return Err(CliError::usage(
                &["backup"],
                format!("--encryption {other}: expected none, database-key or provided-key"),
            ));
        }
    };
    let key = match source {
        Some(source) => Some(source.load(|| ctx.provider())?),
        None => None,
    };
    // The library checks that mode and key agree (a clear error either way).
    Ok(Some(BackupEncryptionSettings::from_parts(mode, key)))
}

fn compression(common: &BackupCommon) -> Option<Compression> {
    match common.compression.as_deref() {
        Some("none") => Some(Compression::None),
        Some("zstd") => Some(Compression::Zstd),
        _ => None,
    }
}

/// The recipients of a backup's `--recipient` and `--recipients-file`.
fn recipients(common: &BackupCommon) -> CliResult<Recipients> {
    recipient_list(
        &common.recipients.recipient,
        &common.recipients.recipients_file,
    )
}

/// The recipients of `--recipient` and `--recipients-file`.
pub fn recipient_list(texts: &[String], files: &[std::path::PathBuf]) -> CliResult<Recipients> {
    let mut recipients = Recipients::new();
    for text in texts {
        recipients = recipients.with(text).context(|| "--recipient")?;
    }
    for file in files {
        recipients = recipients.with_file(file).context(|| "--recipients-file")?;
    }
    Ok(recipients)
}

/// The identities of `--identity` files; a passphrase-protected one asks on the terminal.
pub fn identities(files: &[std::path::PathBuf]) -> CliResult<Identities> {
    let mut identities = Identities::new();
    for file in files {
        identities = identities
            .with_file_prompting(file, age::cli_common::UiCallbacks)
            .context(|| "--identity")?;
    }
    Ok(identities)
}

/// The current master key, plus a recovery provider per `--recovery-master-key-path`.
pub fn master_keys(ctx: &Ctx, recovery: &[std::path::PathBuf]) -> CliResult<MasterKeys> {
    let mut keys = MasterKeys::new(ctx.provider()?);
    for path in recovery {
        let provider: Arc<dyn MasterKeyProvider> = Arc::new(FileProvider::new(path));
        keys = keys.with_recovery(provider);
    }
    Ok(keys)
}

fn report_backup(ctx: &Ctx, manifest: &Manifest, output: &Path) {
    let output = match object::url_of(output) {
        Ok(Some(url)) => url.to_string(),
        _ => output.display().to_string(),
    };
    ctx.note(format_args!(
        "wrote {} backup {} of {} to {} ({})",
        manifest.kind(),
        manifest.backup_id(),
        printable(manifest.database_name()),
        output,
        match manifest.key_id() {
            Some(key_id) => format!(
                "encrypted, {}, key {key_id}",
                manifest.encryption().as_str()
            ),
            None => "not encrypted".to_owned(),
        }
    ));
}

/// The manifest lines of `inspect` for a stream with header extensions (a backup file).
/// A raw stream (no extensions) is reported as such.
pub fn describe_manifest(
    header: &Header,
    input: &InputSpec,
) -> CliResult<Vec<(&'static str, String)>> {
    if header.extensions().is_empty() {
        return Ok(vec![(
            "kind:",
            "raw stream (no backup manifest)".to_owned(),
        )]);
    }
    let name = input.name();
    let info = strongbox::backup::inspect_reader(&name, header.as_bytes()).context(|| name)?;
    let manifest = info.manifest();
    let mut lines = vec![
        ("kind:", manifest.kind().to_string()),
        ("backup id:", manifest.backup_id().to_string()),
        (
            "database:",
            printable(manifest.database_name()).into_owned(),
        ),
        ("created:", manifest.created_at_rfc3339()),
        ("compression:", manifest.compression().to_string()),
        ("encryption:", manifest.encryption().as_str().to_owned()),
    ];
    if let Some(previous) = manifest.previous_backup_id() {
        lines.push(("follows:", previous.to_string()));
    }
    for wrapped in info.wrapped_keys() {
        let holder = match (wrapped.scheme(), wrapped.fingerprint()) {
            (_, Some(fingerprint)) => format!("master key {fingerprint}"),
            (Scheme::Dpapi, None) => "Windows DPAPI (a user's)".to_owned(),
            (other, None) => other.to_string(),
        };
        lines.push(("key wrapped by:", holder));
    }
    let slots = header
        .extension(strongbox::backup::EXT_RECIPIENT_SLOTS)
        .and_then(strongbox::backup::parse_slots)
        .unwrap_or_default();
    for slot in slots {
        let stanzas = strongbox::backup::slot_stanzas(&slot).join(", ");
        lines.push(("recipient slot:", format!("age file to {stanzas}")));
    }
    Ok(lines)
}
