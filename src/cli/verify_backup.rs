//! `verify` of database backups: a file (or an object) whose header carries a manifest, a
//! logical chain of several, or the chain of an object prefix, is checked by the library's
//! [`strongbox::backup::verify`], as `restore` would check it, writing nothing. Anything else is
//! a raw stream, for [`super::crypt::verify`].

use std::fs::File;
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};

use strongbox::backup::{Authentication, BackupInput, Channel, VerifyConfig, printable};
use strongbox::stream::Header;

use super::Context as Ctx;
use super::args::VerifyArgs;
use super::backup::{master_keys, option_for};
use super::crypt;
use super::error::{CliError, CliResult, Context as _, describe};
use super::folder::{self, MANIFEST_EXTENSION};
use super::key_input::KeySource;
use super::object::{self, ObjectReader};

/// `strongbox verify`: a backup or a chain here, a raw stream in [`crypt::verify`].
pub fn verify(ctx: &Ctx, args: VerifyArgs) -> CliResult {
    let stdin = args.input == Path::new("-");
    let one = args.chain.is_empty() && !folder::is_folder(&args.input);
    if one && (stdin || !carries_manifest(&args.input)?) {
        return crypt::verify(ctx, args);
    }
    let files: Vec<PathBuf> = std::iter::once(&args.input)
        .chain(&args.chain)
        .cloned()
        .collect();
    if files.iter().any(|f| f == Path::new("-")) {
        return Err(CliError::usage(
            &["verify"],
            "the backups of a chain are read from files: `-` (stdin) is not accepted among them",
        ));
    }
    let (names, inputs) = folder::backup_inputs(ctx, &files, "verify")?;
    let config = config(ctx, &args, inputs)?;
    let keys = master_keys(ctx, &args.reading.recovery_master_key_path)?;
    let report = strongbox::backup::verify(&config, &keys, Channel::Authenticated)
        .map_err(|err| CliError::fail(format!("verify: {}{}", describe(&err), option_for(&err))))?;
    let mut stdout = io::stdout().lock();
    let members = names
        .iter()
        .zip(&report.manifests)
        .zip(&report.authentication);
    for (position, ((file, manifest), auth)) in members.enumerate() {
        let kind = manifest.kind();
        writeln!(
            stdout,
            "backup {position} ({}): OK, {kind}, {}",
            ctx.redacted(&printable(file)),
            match auth {
                Authentication::Key(key_id) => format!("authenticated by key {key_id}"),
                _ => "NOT authenticated: unencrypted, checked by integrity tags only".to_owned(),
            }
        )
        .context(|| "writing to stdout")?;
    }
    ctx.note(format_args!(
        "verified {} backup(s): {} file(s), {} bytes of payload",
        report.manifests.len(),
        report.files,
        report.bytes
    ));
    Ok(())
}

/// The library's configuration from the key and reading options.
fn config(ctx: &Ctx, args: &VerifyArgs, inputs: Vec<BackupInput>) -> CliResult<VerifyConfig> {
    let mut config =
        VerifyConfig::from_inputs(inputs).with_threads(ctx.threads(args.threads.threads));
    if let Some(source) = KeySource::from_args(&args.key, "verify")? {
        config = config.with_key(source.load(|| ctx.provider())?);
    }
    if args.reading.allow_unauthenticated_members {
        config = config.dangerously_allow_unauthenticated_members();
    }
    if let Some(ratio) = args.reading.max_expansion_ratio {
        config = config.with_max_expansion_ratio((ratio > 0).then_some(ratio));
    }
    Ok(config.with_identities(super::backup::identities(&args.reading.identity)?))
}

/// Whether a regular file's or an object's (not yet authenticated) header carries a manifest.
/// Only a regular file is read here (a pipe's bytes would be gone); a file or an object that
/// cannot be read as a stream is not a backup: the raw verification reports why.
fn carries_manifest(path: &Path) -> CliResult<bool> {
    if let Some(url) = object::url_of(path)? {
        return Ok(ObjectReader::open(&url).is_ok_and(has_manifest));
    }
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(false);
    }
    Ok(File::open(path).is_ok_and(has_manifest))
}

/// Whether the stream `reader` starts with has a header carrying a manifest.
fn has_manifest(mut reader: impl Read) -> bool {
    Header::read_from(&mut reader)
        .is_ok_and(|header| header.extension(MANIFEST_EXTENSION).is_some())
}

/// Refuses a backup read as a raw stream (from stdin or a pipe): its manifest, archive and
/// policy would go unchecked, so it would pass where `restore` refuses it.
pub fn refuse_backup(header: &Header, name: &str) -> CliResult {
    if header.extension(MANIFEST_EXTENSION).is_some() {
        return Err(CliError::fail(format!(
            "{name} is a database backup: give it as a regular file (not stdin or a pipe) to \
             verify it as `restore` would read it"
        )));
    }
    Ok(())
}
