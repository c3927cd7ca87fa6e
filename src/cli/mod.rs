//! The `strongbox` command-line tool, on the crate's public API only.
//!
//! One file per concept: [`args`] (the command line), [`master_key`] (master-key selection),
//! [`key_input`] (data-key input), [`keys`] (key and master-key commands), [`crypt`] (encrypt,
//! decrypt, verify, inspect), [`backup`] (backup, restore), [`verify_backup`] (verify of
//! backups and chains), [`files`] (stdin/stdout and atomic
//! output files), [`progress`] (the progress bar) and [`error`] (exit statuses and messages).

use std::fmt;
use std::io::{self, Write as _};
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use clap::Parser as _;
use strongbox::MasterKeyProvider;

mod args;
mod backup;
mod crypt;
mod error;
mod files;
mod key_input;
mod keys;
mod master_key;
mod progress;
mod verify_backup;

use args::{Cli, Command};
use error::{CliError, CliResult, Redactions, one_line};
use master_key::MasterKeyChoice;

/// Parses the command line, runs the command and turns the outcome into an exit status:
/// 0 success, 2 usage error (clap's message), 1 any other failure (one `error:` line), 130 on
/// SIGINT, 143 on SIGTERM and 129 on SIGHUP (see [`on_interruption`]). No message shows an
/// argument that reads as a key ([`Redactions`]).
pub fn main() -> ExitCode {
    handle_interruptions();
    let redactions = Redactions::from_args(std::env::args_os());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` exit 0, usage errors 2.
        Err(err) => return usage_error(&err, &redactions),
    };
    match run(cli, &redactions) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(err)) => usage_error(&err, &redactions),
        Err(CliError::Failure(message)) => {
            let mut stderr = io::stderr().lock();
            let _ = writeln!(stderr, "error: {}", one_line(&redactions.apply(&message)));
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's message as clap would (colours included), or plain and redacted when an
/// argument reads as a key; returns clap's exit status.
fn usage_error(err: &clap::Error, redactions: &Redactions) -> ExitCode {
    if !err.use_stderr() || !redactions.any() {
        err.exit();
    }
    let mut stderr = io::stderr().lock();
    let _ = write!(stderr, "{}", redactions.apply(&err.render().to_string()));
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

/// Runs [`on_interruption`] on the first SIGINT, SIGTERM or SIGHUP, in a thread of its own (Unix;
/// elsewhere the system's default applies).
fn handle_interruptions() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        // Without the thread, a signal ends the process the default way (no clean-up).
        let _ = std::thread::Builder::new()
            .name("strongbox-signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    on_interruption(signal);
                }
            });
    }
}

#[cfg(unix)]
/// Ends the process on `signal`: ends the process groups of running master-key programs,
/// aborts the object-store uploads in progress (feature `object-store`), removes every temporary file and directory it has alive (no partial output and no plaintext
/// is left behind) and exits with `128 + signal`.
fn on_interruption(signal: i32) -> ! {
    strongbox::keys::ExecProvider::kill_running_programs();
    #[cfg(feature = "object-store")]
    strongbox::object::ObjectWriter::abort_running_uploads();
    strongbox::fs::exit_removing_temporaries(128 + signal)
}

/// Below this many segments, an input is streamed with one thread unless `--threads` says
/// otherwise.
const SMALL_INPUT_SEGMENTS: u64 = 128;

/// What every command may need: the master-key choice (its provider built once, on first use)
/// and the global flags.
pub struct Context<'a> {
    master: MasterKeyChoice,
    provider: OnceLock<Arc<dyn MasterKeyProvider>>,
    quiet: bool,
    redactions: &'a Redactions,
}

impl Context<'_> {
    /// The selected master-key provider.
    pub fn provider(&self) -> CliResult<Arc<dyn MasterKeyProvider>> {
        if let Some(provider) = self.provider.get() {
            return Ok(provider.clone());
        }
        let provider = self.master.provider()?;
        Ok(self.provider.get_or_init(|| provider).clone())
    }

    /// Whether `--quiet` was given.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Worker threads: `--threads`, at most one per core; every core without it.
    pub fn threads(&self, requested: Option<NonZeroUsize>) -> NonZeroUsize {
        let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        requested.map_or(cores, |requested| requested.min(cores))
    }

    /// [`threads`](Self::threads) for streaming an input of `len` bytes (when known) in
    /// segments of `segment_size`: without `--threads`, one thread for an input of fewer than
    /// [`SMALL_INPUT_SEGMENTS`] segments, where starting more costs more than they save
    /// (docs/PERFORMANCE.md, whole-process rows).
    pub fn threads_for_input(
        &self,
        requested: Option<NonZeroUsize>,
        len: Option<u64>,
        segment_size: usize,
    ) -> NonZeroUsize {
        let small = SMALL_INPUT_SEGMENTS.saturating_mul(segment_size as u64);
        match (requested, len) {
            (None, Some(len)) if len < small => NonZeroUsize::MIN,
            _ => self.threads(requested),
        }
    }

    /// A warning line on stderr, shown also with `--quiet`.
    pub fn warn(&self, message: fmt::Arguments<'_>) {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(
            stderr,
            "warning: {}",
            self.redactions.apply(&message.to_string())
        );
    }

    /// Text for stdout with every argument that reads as a key left out.
    pub fn redacted(&self, text: &str) -> String {
        self.redactions.apply(text)
    }

    /// A status line on stderr (not with `--quiet`), without any argument that reads as a key.
    pub fn note(&self, message: fmt::Arguments<'_>) {
        if !self.quiet {
            let mut stderr = io::stderr().lock();
            let _ = writeln!(
                stderr,
                "strongbox: {}",
                self.redactions.apply(&message.to_string())
            );
        }
    }
}

fn run(cli: Cli, redactions: &Redactions) -> CliResult {
    let ctx = Context {
        master: MasterKeyChoice::from_global(&cli.master),
        provider: OnceLock::new(),
        quiet: cli.quiet,
        redactions,
    };
    match cli.command {
        Command::Key(command) => keys::key(&ctx, command),
        Command::MasterKey(command) => keys::master_key(&ctx, command),
        Command::Encrypt(args) => crypt::encrypt(&ctx, args),
        Command::Decrypt(args) => crypt::decrypt(&ctx, args),
        Command::Verify(args) => verify_backup::verify(&ctx, args),
        Command::Inspect(args) => crypt::inspect(&ctx, args),
        Command::Backup(args) => backup::backup(&ctx, args),
        Command::Restore(args) => backup::restore(&ctx, args),
    }
}
