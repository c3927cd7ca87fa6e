//! The `strongbox` command-line tool, on the crate's public API only.
//!
//! One file per concept: [`args`] (the command line), [`master_key`] (master-key selection),
//! [`key_input`] (data-key input), [`keys`] (key and master-key commands), [`crypt`] (encrypt,
//! decrypt, verify, inspect), [`backup`] (backup, restore), [`files`] (stdin/stdout and atomic
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

use args::{Cli, Command};
use error::{CliError, CliResult, one_line};
use master_key::MasterKeyChoice;

/// Parses the command line, runs the command and turns the outcome into an exit status:
/// 0 success, 2 usage error (clap's message), 1 any other failure (one `error:` line).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` exit 0, usage errors 2.
        Err(err) => err.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(err)) => err.exit(),
        Err(CliError::Failure(message)) => {
            let mut stderr = io::stderr().lock();
            let _ = writeln!(stderr, "error: {}", one_line(&message));
            ExitCode::FAILURE
        }
    }
}

/// What every command may need: the master-key choice (its provider built once, on first use)
/// and the global flags.
pub struct Context {
    master: MasterKeyChoice,
    provider: OnceLock<Arc<dyn MasterKeyProvider>>,
    quiet: bool,
}

impl Context {
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

    /// A status line on stderr (not with `--quiet`).
    pub fn note(&self, message: fmt::Arguments<'_>) {
        if !self.quiet {
            let mut stderr = io::stderr().lock();
            let _ = writeln!(stderr, "strongbox: {message}");
        }
    }
}

fn run(cli: Cli) -> CliResult {
    let ctx = Context {
        master: MasterKeyChoice::from_global(&cli.master),
        provider: OnceLock::new(),
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Key(command) => keys::key(&ctx, command),
        Command::MasterKey(command) => keys::master_key(&ctx, command),
        Command::Encrypt(args) => crypt::encrypt(&ctx, args),
        Command::Decrypt(args) => crypt::decrypt(&ctx, args),
        Command::Verify(args) => crypt::verify(&ctx, args),
        Command::Inspect(args) => crypt::inspect(&ctx, args),
        Command::Backup(args) => backup::backup(&ctx, args),
        Command::Restore(args) => backup::restore(&ctx, args),
    }
}
