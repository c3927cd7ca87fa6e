//! Data-key input: `--key-file FILE`, `--key -` (stdin) or `--db DIR`. Never the key itself on
//! the command line: it would show in the process list and the shell history.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use strongbox::{DataKey, DatabaseKeyStore, MasterKeyProvider};
use zeroize::Zeroizing;

use super::args::{BackupKeyArgs, KeyInputArgs};
use super::error::{CliError, CliResult, Context as _};

/// Largest key file or stdin key read: a base64 key is 44 characters; allow comments of
/// whitespace around it, refuse anything that is clearly not a key before reading it all.
const MAX_KEY_TEXT: u64 = 1024;

/// Why `--key VALUE` is refused.
pub const KEY_ON_COMMAND_LINE: &str = "a key on the command line is not accepted (it would show \
     in the process list and the shell history): use --key-file FILE, or --key - to read it from stdin";

/// A checked key source.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A file holding base64.
    File(PathBuf),
    /// Base64 on stdin.
    Stdin,
    /// The database key of a directory.
    Database(PathBuf),
}

impl KeySource {
    /// The key source given, if any. `--key` with anything but `-` is a usage error.
    /// `command` names the command, for the usage shown with an error.
    pub fn from_args(args: &KeyInputArgs, command: &str) -> CliResult<Option<Self>> {
        if let Some(db) = &args.db {
            return Ok(Some(KeySource::Database(db.clone())));
        }
        Self::file_or_stdin(args.key_file.as_ref(), args.key.as_ref(), command)
    }

    /// Like [`KeySource::from_args`], for the options of `backup` and `restore` (no `--db`).
    pub fn from_backup_args(args: &BackupKeyArgs, command: &str) -> CliResult<Option<Self>> {
        Self::file_or_stdin(args.key_file.as_ref(), args.key.as_ref(), command)
    }

    fn file_or_stdin(
        file: Option<&PathBuf>,
        key: Option<&OsString>,
        command: &str,
    ) -> CliResult<Option<Self>> {
        match (file, key) {
            (Some(file), _) => Ok(Some(KeySource::File(file.clone()))),
            (None, Some(key)) if key == "-" => Ok(Some(KeySource::Stdin)),
            (None, Some(_)) => Err(CliError::usage(&[command], KEY_ON_COMMAND_LINE)),
            (None, None) => Ok(None),
        }
    }

    /// Whether the key is read from stdin (which then cannot carry the data too).
    pub fn uses_stdin(&self) -> bool {
        matches!(self, KeySource::Stdin)
    }

    /// Reads or unprotects the key. `provider` is only used for [`KeySource::Database`].
    pub fn load(
        &self,
        provider: impl FnOnce() -> CliResult<Arc<dyn MasterKeyProvider>>,
    ) -> CliResult<DataKey> {
        match self {
            KeySource::File(path) => {
                let file = strongbox::fs::open_regular(path)
                    .context(|| format!("key file {}", path.display()))?;
                let text =
                    read_key_text(file).context(|| format!("key file {}", path.display()))?;
                DataKey::from_base64(text.expose_secret())
                    .context(|| format!("key file {}", path.display()))
            }
            KeySource::Stdin => {
                let text = read_key_text(io::stdin().lock()).context(|| "key from stdin")?;
                DataKey::from_base64(text.expose_secret()).context(|| "key from stdin")
            }
            KeySource::Database(dir) => load_database_key(&provider()?, dir),
        }
    }
}

/// The database key of `dir`, opened with `provider`.
pub fn load_database_key(provider: &Arc<dyn MasterKeyProvider>, dir: &Path) -> CliResult<DataKey> {
    DatabaseKeyStore::new(provider.clone())
        .load(dir)
        .context(|| "database key")
}

/// Reads at most [`MAX_KEY_TEXT`] bytes of UTF-8 text into memory that is zeroized afterwards.
pub fn read_key_text(reader: impl Read) -> io::Result<SecretString> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(128));
    reader.take(MAX_KEY_TEXT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_TEXT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "more than {MAX_KEY_TEXT} bytes; a data key is one line of base64 (44 characters)"
            ),
        ));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        let what = if bytes.len() == 32 {
            "it holds 32 bytes that are not text (a raw key?)"
        } else {
            "it is not text"
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{what}; a data key is one line of base64 (44 characters, as `key get` prints it)"
            ),
        )
    })?;
    Ok(SecretString::from(text))
}
