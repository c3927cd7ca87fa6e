//! How a command fails: a usage error (exit status 2, clap's format) or a failure (exit status 1,
//! one `error:` line on stderr).

use std::error::Error as StdError;
use std::fmt;

/// A command's failure.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong: printed by clap with the usage, exit status 2.
    Usage(clap::Error),
    /// Anything else: one line on stderr, exit status 1.
    Failure(String),
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    /// A usage error with `message`, in clap's format, followed by the usage of the command
    /// at `path` (e.g. `["key", "put"]`).
    pub fn usage(path: &[&str], message: impl fmt::Display) -> Self {
        use clap::CommandFactory as _;
        let mut cmd = super::args::Cli::command();
        cmd.build();
        for name in path {
            match cmd.find_subcommand(name) {
                Some(sub) => cmd = sub.clone(),
                None => break,
            }
        }
        CliError::Usage(cmd.error(clap::error::ErrorKind::ArgumentConflict, message))
    }

    /// A failure with `message`.
    pub fn fail(message: impl fmt::Display) -> Self {
        CliError::Failure(message.to_string())
    }
}

/// `message` and the chain of sources of `err`, each appended only if the text so far does not
/// already contain it (most of the crate's errors already print their source).
pub fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Flattens `text` to a single line (a provider's stderr excerpt may span lines).
pub fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for (i, part) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            line.push_str(" | ");
        }
        line.push_str(part);
    }
    line
}

/// Adds what was being done to an error: `.context(|| format!("reading {path}"))`.
pub trait Context<T> {
    /// Converts the error into a [`CliError::Failure`] reading `"{what}: {error}"`.
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> CliResult<T>;
}

impl<T, E: StdError + 'static> Context<T> for Result<T, E> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> CliResult<T> {
        self.map_err(|err| CliError::Failure(format!("{}: {}", what(), describe(&err))))
    }
}

/// Converts an error into a [`CliError::Failure`] with its own message only.
pub trait OrFail<T> {
    /// The error's message (and its sources) as the failure.
    fn or_fail(self) -> CliResult<T>;
}

impl<T, E: StdError + 'static> OrFail<T> for Result<T, E> {
    fn or_fail(self) -> CliResult<T> {
        self.map_err(|err| CliError::Failure(describe(&err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\n  b \n\nc"), "a | b | c");
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn describe_skips_sources_already_printed() {
        let io = std::io::Error::other("disk on fire");
        let wrapped = std::io::Error::other(io);
        assert_eq!(describe(&wrapped), "disk on fire");
    }
}
