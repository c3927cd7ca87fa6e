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

/// What replaces a command-line argument that reads as a key, in every message printed.
pub const REDACTED_ARGUMENT: &str = "<an argument that reads as a key, not shown>";

/// The command-line arguments (or parts of them) that read as a key: a key pasted where a path
/// belongs (`--key-file "$(cat db1.key)"`) must not be printed back by an error message, clap's
/// included. Every message goes through [`Redactions::apply`] before it is printed.
#[derive(Debug, Default)]
pub struct Redactions(Vec<String>);

impl Redactions {
    /// The parts of `args` that read as a key: a whole argument, the value of `--flag=VALUE`,
    /// and each `/`-separated component of either.
    pub fn from_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Self {
        let mut found = Vec::new();
        for arg in args {
            let bytes = arg.as_encoded_bytes();
            let value = match bytes.iter().position(|b| *b == b'=') {
                Some(eq) if bytes.starts_with(b"--") => &bytes[eq + 1..],
                _ => bytes,
            };
            for part in std::iter::once(bytes)
                .chain(std::iter::once(value))
                .chain(value.split(|b| *b == b'/'))
            {
                if reads_as_a_key(part) {
                    found.push(String::from_utf8_lossy(part).into_owned());
                    found.push(
                        format!("{:?}", String::from_utf8_lossy(part))
                            .trim_matches('"')
                            .to_string(),
                    );
                }
            }
        }
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        found.dedup();
        Self(found)
    }

    /// Whether any argument reads as a key.
    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    /// `text` with every argument that reads as a key replaced by [`REDACTED_ARGUMENT`].
    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.0 {
            text = text.replace(secret.as_str(), REDACTED_ARGUMENT);
        }
        text
    }
}

/// Whether `arg` reads as a 32-byte key: 43 or 44 characters of base64 (standard or URL-safe,
/// padded or not), 64 hexadecimal digits, or up to 32 bytes that are not plain text (a raw key,
/// whose trailing newlines the shell's `$(...)` dropped); surrounding whitespace ignored.
pub fn reads_as_a_key(arg: &[u8]) -> bool {
    let trimmed = arg.trim_ascii();
    let unpadded = trimmed.strip_suffix(b"=").unwrap_or(trimmed);
    let base64 = unpadded.len() == 43
        && unpadded
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(b));
    let hex = trimmed.len() == 64 && trimmed.iter().all(u8::is_ascii_hexdigit);
    let raw = (16..=32).contains(&arg.len())
        && std::str::from_utf8(arg).map_or(true, |s| s.chars().any(char::is_control));
    base64 || hex || raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\n  b \n\nc"), "a | b | c");
        assert_eq!(one_line("plain"), "plain");
    }

    #[cfg(unix)]
    #[test]
    fn arguments_that_read_as_a_key_are_redacted() {
        use std::os::unix::ffi::OsStringExt as _;

        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let raw = std::ffi::OsString::from_vec(vec![
            0x9f, 0x01, b'k', 0xfe, 0x10, 0x20, 0x7f, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        ]);
        let redactions = Redactions::from_args([
            "strongbox".into(),
            format!("--key-file={}", &b64[..43]).into(),
            format!("./keys/{hex}").into(),
            raw.clone(),
            "/var/lib/ravendb/data/db1-backup".into(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd".into(),
        ]);
        let raw_shown = String::from_utf8_lossy(raw.as_encoded_bytes()).into_owned();
        let text = format!(
            "key file {}: no | {hex}/x | {raw_shown} | /var/lib/ravendb/data/db1-backup",
            &b64[..43]
        );
        let shown = redactions.apply(&text);
        for secret in [&b64[..43], hex, raw_shown.as_str()] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("/var/lib/ravendb/data/db1-backup"),
            "{shown}"
        );
        assert_eq!(shown.matches(REDACTED_ARGUMENT).count(), 3, "{shown}");
        assert!(
            !Redactions::from_args([
                "x".into(),
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd".into()
            ])
            .any()
        );
    }

    #[test]
    fn describe_skips_sources_already_printed() {
        let io = std::io::Error::other("disk on fire");
        let wrapped = std::io::Error::other(io);
        assert_eq!(describe(&wrapped), "disk on fire");
    }
}
