//! Master-key configuration: RavenDB-style `settings.json` keys, or code.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::provider::{
    DpapiProvider, ExecProvider, FileProvider, MasterKeyProvider, ProviderError,
    UnixHomeFileProvider,
};

const EXEC: &str = "Security.MasterKey.Exec";
const EXEC_ARGUMENTS: &str = "Security.MasterKey.Exec.Arguments";
const EXEC_TIMEOUT: &str = "Security.MasterKey.Exec.TimeoutInSec";
const PATH: &str = "Security.MasterKey.Path";
const ALLOW_INSECURE: &str = crate::provider::ALLOW_INSECURE_PERMISSIONS_SETTING;
/// Every key under this prefix must be one of the above: a misspelt master-key setting must not
/// silently fall back to the OS default.
const PREFIX: &str = "Security.MasterKey.";
/// Largest settings file read.
const MAX_SETTINGS_LEN: u64 = 16 << 20;

/// The master-key settings, as read from a RavenDB-style `settings.json` (flat keys) or built in
/// code.
///
/// | key | value |
/// |---|---|
/// | `Security.MasterKey.Exec` | program that prints the master key ([`ExecProvider`]) |
/// | `Security.MasterKey.Exec.Arguments` | its arguments: a string split with shell-like quoting (no shell runs), or an array of strings |
/// | `Security.MasterKey.Exec.TimeoutInSec` | time limit in seconds, default 30 (a number or a numeric string) |
/// | `Security.MasterKey.Path` | file holding the master key ([`FileProvider`]) |
/// | `Security.MasterKey.AllowInsecurePermissions` | `true` to accept a `Path` file that group or others can read (secret volumes); default `false` |
///
/// Neither `Exec` nor `Path`: the OS default ([`MasterKeySource::os_default`]). Both: an error,
/// since an order of precedence between them has confused users of other systems. Keys outside
/// `Security.MasterKey.*` are ignored; an unknown key inside it is an error (a misspelt setting
/// must not silently select the OS default). An empty string or `null` counts as unset.
/// Relative paths are kept as written (relative to the process's working directory).
///
/// `Debug` shows the program and paths, never argument values (they may carry credentials).
///
/// ```
/// use strongbox::{MasterKeySettings, MasterKeySource};
///
/// let settings = MasterKeySettings::from_json_str(r#"{
///     "ServerUrl": "https://db1:8080",
///     "Security.MasterKey.Exec": "/usr/local/bin/give-me-key",
///     "Security.MasterKey.Exec.Arguments": "--vault 'prod keys'",
///     "Security.MasterKey.Exec.TimeoutInSec": 10
/// }"#)?;
/// match settings.source()? {
///     MasterKeySource::Exec { args, timeout, .. } => {
///         assert_eq!(args, ["--vault", "prod keys"]);
///         assert_eq!(timeout.as_secs(), 10);
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), strongbox::SettingsError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MasterKeySettings {
    exec: Option<PathBuf>,
    exec_arguments: Vec<String>,
    exec_timeout: Option<Duration>,
    path: Option<PathBuf>,
    allow_insecure_permissions: bool,
}

impl MasterKeySettings {
    /// Settings selecting the OS default provider (as an empty `settings.json`).
    pub fn os_default() -> Self {
        Self::default()
    }

    /// Settings running `program` for the master key.
    pub fn exec(program: impl Into<PathBuf>) -> Self {
        Self {
            exec: Some(program.into()),
            ..Self::default()
        }
    }

    /// Settings reading the master key from the file at `path`.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Sets the arguments of the `Exec` program.
    pub fn with_exec_arguments<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exec_arguments = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the time limit of the `Exec` program.
    pub fn with_exec_timeout(mut self, timeout: Duration) -> Self {
        self.exec_timeout = Some(timeout);
        self
    }

    /// Accepts a `Path` key file that group or others can access.
    pub fn allow_insecure_permissions(mut self, allow: bool) -> Self {
        self.allow_insecure_permissions = allow;
        self
    }

    /// Reads the settings from a `settings.json` file.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self, SettingsError> {
        let path = path.as_ref();
        let io_err = |source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut text = Vec::new();
        crate::fs::open_regular(path)
            .map_err(io_err)?
            .take(MAX_SETTINGS_LEN + 1)
            .read_to_end(&mut text)
            .map_err(io_err)?;
        if text.len() as u64 > MAX_SETTINGS_LEN {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "larger than 16 MiB",
            )));
        }
        let map: Map<String, Value> =
            serde_json::from_slice(&text).map_err(|source| SettingsError::Json {
                path: Some(path.to_path_buf()),
                source,
            })?;
        Self::from_map(&map)
    }

    /// Reads the settings from the text of a `settings.json`.
    pub fn from_json_str(json: &str) -> Result<Self, SettingsError> {
        let map: Map<String, Value> = serde_json::from_str(json)
            .map_err(|source| SettingsError::Json { path: None, source })?;
        Self::from_map(&map)
    }

    /// Reads the settings from an already parsed JSON object.
    fn from_map(map: &Map<String, Value>) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                EXEC => settings.exec = non_empty_string(EXEC, value)?.map(PathBuf::from),
                EXEC_ARGUMENTS => settings.exec_arguments = arguments(value)?,
                EXEC_TIMEOUT => settings.exec_timeout = Some(timeout(value)?),
                PATH => settings.path = non_empty_string(PATH, value)?.map(PathBuf::from),
                ALLOW_INSECURE => settings.allow_insecure_permissions = boolean(value)?,
                other if other.starts_with(PREFIX) => {
                    return Err(SettingsError::UnknownSetting {
                        key: other.to_string(),
                    });
                }
                _ => {}
            }
        }
        settings.source()?;
        Ok(settings)
    }

    /// Which master-key source these settings select, checked.
    pub fn source(&self) -> Result<MasterKeySource, SettingsError> {
        match (&self.exec, &self.path) {
            (Some(_), Some(_)) => Err(SettingsError::ExecAndPath),
            (Some(program), None) => Ok(MasterKeySource::Exec {
                program: program.clone(),
                args: self.exec_arguments.clone(),
                timeout: self.exec_timeout.unwrap_or(ExecProvider::DEFAULT_TIMEOUT),
            }),
            (None, _) if !self.exec_arguments.is_empty() => Err(SettingsError::WithoutExec {
                key: EXEC_ARGUMENTS,
            }),
            (None, _) if self.exec_timeout.is_some() => {
                Err(SettingsError::WithoutExec { key: EXEC_TIMEOUT })
            }
            (None, Some(path)) => Ok(MasterKeySource::File {
                path: path.clone(),
                allow_insecure_permissions: self.allow_insecure_permissions,
            }),
            (None, None) => Ok(MasterKeySource::os_default()),
        }
    }

    /// The provider these settings select. Nothing is run or read until first use.
    pub fn provider(&self) -> Result<Arc<dyn MasterKeyProvider>, SettingsError> {
        Ok(self.source()?.provider()?)
    }
}

impl fmt::Debug for MasterKeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeySettings")
            .field("exec", &self.exec)
            .field(
                "exec_arguments",
                &format_args!("[{} redacted]", self.exec_arguments.len()),
            )
            .field("exec_timeout", &self.exec_timeout)
            .field("path", &self.path)
            .field(
                "allow_insecure_permissions",
                &self.allow_insecure_permissions,
            )
            .finish()
    }
}

impl<'de> Deserialize<'de> for MasterKeySettings {
    /// Deserializes from a map of settings (the whole `settings.json` object), with the rules
    /// of [`MasterKeySettings::from_json_str`].
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        Self::from_map(&map).map_err(serde::de::Error::custom)
    }
}

fn non_empty_string(key: &'static str, value: &Value) -> Result<Option<String>, SettingsError> {
    match value {
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(SettingsError::InvalidValue {
            key,
            expected: "a string",
        }),
    }
}

fn arguments(value: &Value) -> Result<Vec<String>, SettingsError> {
    let invalid = SettingsError::InvalidValue {
        key: EXEC_ARGUMENTS,
        expected: "a string (split like a shell would, without running one) or an array of strings",
    };
    match value {
        Value::String(s) => shell_words::split(s).map_err(|_| SettingsError::InvalidValue {
            key: EXEC_ARGUMENTS,
            expected: "a string with balanced quotes",
        }),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(invalid),
        _ => Err(invalid),
    }
}

fn timeout(value: &Value) -> Result<Duration, SettingsError> {
    let secs = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match secs {
        Some(secs @ 1..=86_400) => Ok(Duration::from_secs(secs)),
        _ => Err(SettingsError::InvalidValue {
            key: EXEC_TIMEOUT,
            expected: "a whole number of seconds from 1 to 86400",
        }),
    }
}

fn boolean(value: &Value) -> Result<bool, SettingsError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(SettingsError::InvalidValue {
            key: ALLOW_INSECURE,
            expected: "true or false",
        }),
    }
}

/// Where the master key comes from: the checked form of [`MasterKeySettings`].
///
/// `Debug` never shows argument values.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterKeySource {
    /// A program prints the key ([`ExecProvider`]).
    Exec {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
        /// Its time limit.
        timeout: Duration,
    },
    /// A file holds the key ([`FileProvider`]).
    File {
        /// The key file.
        path: PathBuf,
        /// Accept a file that group or others can access.
        allow_insecure_permissions: bool,
    },
    /// A key generated once into a file in the home directory ([`UnixHomeFileProvider`]).
    UnixHomeFile {
        /// The key file; `None`: `$HOME/.strongbox/secret.key`.
        path: Option<PathBuf>,
    },
    /// Windows DPAPI for the current user ([`DpapiProvider`]).
    Dpapi,
}

impl MasterKeySource {
    /// The OS default: [`MasterKeySource::Dpapi`] on Windows,
    /// [`MasterKeySource::UnixHomeFile`] (at `$HOME/.strongbox/secret.key`) elsewhere.
    pub fn os_default() -> Self {
        if cfg!(windows) {
            MasterKeySource::Dpapi
        } else {
            MasterKeySource::UnixHomeFile { path: None }
        }
    }

    /// The provider for this source. Nothing is run or read until first use.
    pub fn provider(&self) -> Result<Arc<dyn MasterKeyProvider>, ProviderError> {
        Ok(match self {
            MasterKeySource::Exec {
                program,
                args,
                timeout,
            } => Arc::new(
                ExecProvider::new(program)
                    .with_args(args)
                    .with_timeout(*timeout),
            ),
            MasterKeySource::File {
                path,
                allow_insecure_permissions,
            } => Arc::new(
                FileProvider::new(path).allow_insecure_permissions(*allow_insecure_permissions),
            ),
            MasterKeySource::UnixHomeFile { path: Some(path) } => {
                Arc::new(UnixHomeFileProvider::at(path))
            }
            MasterKeySource::UnixHomeFile { path: None } => Arc::new(UnixHomeFileProvider::new()?),
            MasterKeySource::Dpapi => Arc::new(DpapiProvider::new()?),
        })
    }
}

impl fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeySource::Exec {
                program,
                args,
                timeout,
            } => f
                .debug_struct("Exec")
                .field("program", program)
                .field("args", &format_args!("[{} redacted]", args.len()))
                .field("timeout", timeout)
                .finish(),
            MasterKeySource::File {
                path,
                allow_insecure_permissions,
            } => f
                .debug_struct("File")
                .field("path", path)
                .field("allow_insecure_permissions", allow_insecure_permissions)
                .finish(),
            MasterKeySource::UnixHomeFile { path } => {
                f.debug_struct("UnixHomeFile").field("path", path).finish()
            }
            MasterKeySource::Dpapi => f.write_str("Dpapi"),
        }
    }
}

/// Why master-key settings could not be read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The settings file could not be read.
    #[error("could not read {}: {source}", path.display())]
    Read {
        /// The settings file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The settings are not a JSON object.
    #[error("{}invalid settings JSON: {source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Json {
        /// The settings file, if read from one.
        path: Option<PathBuf>,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// Both `Security.MasterKey.Exec` and `Security.MasterKey.Path` are set.
    #[error(
        "both Security.MasterKey.Exec and Security.MasterKey.Path are set; set only one \
         (strongbox does not guess which one you meant)"
    )]
    ExecAndPath,
    /// An `Exec` option is set without `Security.MasterKey.Exec`.
    #[error("{key} is set, but Security.MasterKey.Exec is not")]
    WithoutExec {
        /// The option.
        key: &'static str,
    },
    /// A setting has a value of the wrong type or range.
    #[error("{key} must be {expected}")]
    InvalidValue {
        /// The setting.
        key: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// An unknown `Security.MasterKey.*` setting (probably misspelt).
    #[error(
        "unknown master-key setting {key}; known: Security.MasterKey.Exec, \
         Security.MasterKey.Exec.Arguments, Security.MasterKey.Exec.TimeoutInSec, \
         Security.MasterKey.Path, Security.MasterKey.AllowInsecurePermissions"
    )]
    UnknownSetting {
        /// The setting.
        key: String,
    },
    /// The selected provider cannot be constructed (e.g. DPAPI off Windows, `HOME` unset).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}
