//! `key init|get|put|rotate` and `master-key generate`.

use std::io::{self, IsTerminal as _, Write as _};
use std::path::Path;

use secrecy::ExposeSecret as _;
use strongbox::keys::{FileProvider, PutOutcome, RotationReport};
use strongbox::{DatabaseKeyStore, MasterKeyProvider as _};

use super::Context as Ctx;
use super::args::{KeyCommand, MasterKeyCommand, RotateArgs};
use super::error::{CliError, CliResult, Context as _};
use super::key_input::{KEY_ON_COMMAND_LINE, read_key_text};
use super::master_key::MasterKeyChoice;

/// Runs a `key` command.
pub fn key(ctx: &Ctx, command: KeyCommand) -> CliResult {
    match command {
        KeyCommand::Init { dir } => init(ctx, &dir),
        KeyCommand::Get { dir, output } => get(ctx, &dir, output.as_deref()),
        KeyCommand::Put {
            dir,
            overwrite,
            stray,
        } => {
            if !stray.is_empty() {
                return Err(CliError::usage(
                    &["key", "put"],
                    format!("`key put` reads the key from stdin; {KEY_ON_COMMAND_LINE}"),
                ));
            }
            put(ctx, &dir, overwrite)
        }
        KeyCommand::Rotate(args) => rotate(ctx, &args),
        KeyCommand::Rewrap { dirs } => rewrap(ctx, &dirs),
    }
}

fn init(ctx: &Ctx, dir: &Path) -> CliResult {
    let store = DatabaseKeyStore::new(ctx.provider()?);
    let key = store.create(dir).context(|| "key init")?;
    ctx.note(format_args!(
        "created database key {} in {}",
        key.id(),
        DatabaseKeyStore::key_path(dir).display()
    ));
    Ok(())
}

fn get(ctx: &Ctx, dir: &Path, output: Option<&Path>) -> CliResult {
    let store = DatabaseKeyStore::new(ctx.provider()?);
    let key = store.export_base64(dir).context(|| "key get")?;
    let mut line = zeroize::Zeroizing::new(String::with_capacity(45));
    line.push_str(key.expose_secret());
    line.push('\n');
    if let Some(path) = output {
        let what = || format!("key get -o {}", path.display());
        write_new_secret_file(path, line.as_bytes(), "a key file", what)?;
        ctx.note(format_args!(
            "wrote the database key of {} to {} (owner-only); it is the plaintext secret: \
             anyone who has it can read this database and its backups",
            dir.display(),
            path.display()
        ));
        return Ok(());
    }
    // Always shown, even with --quiet: the operator must know a secret is now in the clear.
    ctx.warn(format_args!(
        "the database key below is the plaintext secret: anyone who has it can read this \
         database and its backups; keep it offline, and delete any copy after `key put`"
    ));
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .context(|| "writing to stdout")
}

fn put(ctx: &Ctx, dir: &Path, overwrite: bool) -> CliResult {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        ctx.note(format_args!(
            "paste the base64 database key, then press Enter and Ctrl-D"
        ));
    }
    let text = read_key_text(stdin.lock()).context(|| "key from stdin")?;
    if text.expose_secret().trim().is_empty() {
        return Err(CliError::fail(
            "key put: no key on stdin (give the base64 key from `key get`)",
        ));
    }
    let store = DatabaseKeyStore::new(ctx.provider()?);
    let outcome = store
        .put_base64(dir, text.expose_secret(), overwrite)
        .context(|| "key put")?;
    let path = DatabaseKeyStore::key_path(dir);
    match outcome {
        PutOutcome::Unchanged => ctx.note(format_args!(
            "{} already holds this key under the current master key: nothing changed",
            path.display()
        )),
        PutOutcome::Stored => ctx.note(format_args!(
            "stored the key in {} under the current master key",
            path.display()
        )),
        PutOutcome::Replaced => ctx.note(format_args!(
            "replaced the different key in {} (--overwrite)",
            path.display()
        )),
    }
    Ok(())
}

fn rotate(ctx: &Ctx, args: &RotateArgs) -> CliResult {
    let store = DatabaseKeyStore::new(ctx.provider()?);
    let new = MasterKeyChoice::from_rotation_target(&args.to).provider()?;
    let report = store.rotate(&args.dirs, &*new).context(|| "key rotate")?;
    let under = "under the new master key";
    note_rotation(ctx, &report, ("re-protected", under), under);
    Ok(())
}

fn rewrap(ctx: &Ctx, dirs: &[std::path::PathBuf]) -> CliResult {
    let store = DatabaseKeyStore::new(ctx.provider()?);
    let report = store.rewrap(dirs).context(|| "key rewrap")?;
    let done = ("re-sealed", "under the newest version of the KMS key");
    note_rotation(ctx, &report, done, "under the newest version");
    Ok(())
}

/// Notes `VERB DIR WHERE` for each rotated key (`done` is the verb and where) and
/// `DIR was already WHERE` for each key already current.
fn note_rotation(ctx: &Ctx, report: &RotationReport, done: (&str, &str), already: &str) {
    let (verb, under) = done;
    for dir in &report.rotated {
        ctx.note(format_args!("{verb} {} {under}", dir.display()));
    }
    for dir in &report.already_current {
        ctx.note(format_args!("{} was already {already}", dir.display()));
    }
}

/// Runs a `master-key` command.
pub fn master_key(ctx: &Ctx, command: MasterKeyCommand) -> CliResult {
    match command {
        MasterKeyCommand::Generate { path } => generate(ctx, &path),
    }
}

/// Creates a new master-key file ([`FileProvider::create_new`]).
fn generate(ctx: &Ctx, path: &Path) -> CliResult {
    let what = || format!("master-key generate {}", path.display());
    let provider = FileProvider::create_new(path).context(what)?;
    let fingerprint = provider.fingerprint().context(what)?;
    ctx.note(format_args!(
        "wrote master key {} to {} (owner-only); back it up: every key it protects is lost with it",
        fingerprint.map(|f| f.to_string()).unwrap_or_default(),
        path.display()
    ));
    Ok(())
}

/// Writes `contents` to the new file `path`, owner-only (0600 on Unix) from its first byte and
/// complete or absent ([`strongbox::fs::write_new`]). An existing `path` (`kind`, e.g. "a key
/// file") is never overwritten.
fn write_new_secret_file<D: std::fmt::Display>(
    path: &Path,
    contents: &[u8],
    kind: &str,
    what: impl Fn() -> D,
) -> CliResult {
    match strongbox::fs::write_new(path, contents) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(CliError::fail(format!(
            "{}: the file exists; refusing to overwrite {kind}",
            what()
        ))),
        Err(e) => Err(e).context(what),
    }
}
