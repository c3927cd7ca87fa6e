//! Master-key configuration: RavenDB-style `settings.json` keys, or code.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::keys::provider::{
    AwsKmsUri, DpapiProvider, ExecProvider, FileProvider, MasterKeyProvider, ProviderError,
    UnixHomeFileProvider, VaultTransitUri,
};

const EXEC: &str = "Security.MasterKey.Exec";
const EXEC_ARGUMENTS: &str = "Security.MasterKey.Exec.Arguments";
const EXEC_TIMEOUT: &str = "Security.MasterKey.Exec.TimeoutInSec";
const PATH: &str = "Security.MasterKey.Path";
const KMS: &str = "Security.MasterKey.Kms";
const ALLOW_INSECURE: &str = crate::keys::provider::ALLOW_INSECURE_PERMISSIONS_SETTING;
/// Every master-key setting; any other key under `Security.MasterKey` is refused (a misspelt
/// setting must not silently select the OS default).
const KNOWN: [&str; 6] = [
    EXEC,
    EXEC_ARGUMENTS,
    EXEC_TIMEOUT,
    PATH,
    KMS,
    ALLOW_INSECURE,
];
/// Largest settings file read.
const MAX_SETTINGS_LEN: u64 = 16 << 20;

/// The master-key settings, as read from a RavenDB-style `settings.json` or built in code.
///
/// | key | value |
/// |---|---|
/// | `Security.MasterKey.Exec` | program that prints the master key ([`ExecProvider`]) |
/// | `Security.MasterKey.Exec.Arguments` | its arguments: a string split with shell-like quoting (no shell runs), or an array of strings |
/// | `Security.MasterKey.Exec.TimeoutInSec` | time limit in seconds, default 30 (a number or a numeric string) |
/// | `Security.MasterKey.Path` | file holding the master key ([`FileProvider`]) |
/// | `Security.MasterKey.Kms` | a KMS key's URI: `vault-transit://HOST:PORT/MOUNT/KEY` ([`VaultTransitUri`]; the provider needs the `vault-transit` feature) or `aws-kms://KEY?region=REGION` ([`AwsKmsUri`]; the `aws-kms` feature) |
/// | `Security.MasterKey.AllowInsecurePermissions` | `true` to accept a `Path` file that group or others can read (secret volumes); default `false` |
///
/// None of `Exec`, `Path` and `Kms`: the OS default ([`MasterKeySource::os_default`]). Two of
/// them: an error, since an order of precedence between them has confused users of other systems.
///
/// Keys are read as RavenDB reads its `settings.json`: letter case is ignored (.NET
/// configuration keys are case-insensitive, so `security.masterkey.path` is
/// `Security.MasterKey.Path`), and nested objects are sections whose names are joined with `.`
/// (`{"Security": {"MasterKey": {"Path": "/k"}}}` is `Security.MasterKey.Path`). A master-key
/// setting must never be lost to a mistake and silently select the OS default, so these are
/// errors:
/// - an unknown key under `Security.MasterKey`, with the known key it most resembles ("did you
///   mean"); "under" compares only letters and digits, so `Security:MasterKey:Path`,
///   `Security_MasterKey_Exec` and `Security.Master.Key.Path` are such keys;
/// - a master-key setting given twice, in any spelling or nesting;
/// - a master-key setting whose value is `null` or `""` (remove it to unset it).
///
/// Keys outside `Security.MasterKey` are ignored. A leading UTF-8 byte-order mark is skipped.
/// Relative paths are kept as written (relative to the process's working directory). Error
/// messages never quote the file's content (a key file given by mistake stays secret).
///
/// `Debug` shows the program and paths, never argument values (they may carry credentials).
///
/// ```
/// use strongbox::MasterKeySettings;
/// use strongbox::keys::MasterKeySource;
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
/// # Ok::<(), strongbox::keys::SettingsError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MasterKeySettings {
    exec: Option<PathBuf>,
    exec_arguments: Vec<String>,
    exec_timeout: Option<Duration>,
    path: Option<PathBuf>,
    kms: Option<String>,
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

    /// Settings protecting keys with the KMS key `uri` names (`vault-transit://...`,
    /// `aws-kms://...`).
    pub fn kms(uri: impl Into<String>) -> Self {
        Self {
            kms: Some(uri.into()),
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

    /// Reads the settings from a `settings.json` file (a leading UTF-8 byte-order mark is
    /// skipped).
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
        let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
        let members = serde_json::from_slice::<Members>(text)
            .map_err(|e| SettingsError::json(Some(path), &e))?;
        Self::from_members(members)
    }

    /// Reads the settings from the text of a `settings.json` (a leading byte-order mark is
    /// skipped).
    pub fn from_json_str(json: &str) -> Result<Self, SettingsError> {
        let json = json.strip_prefix('\u{feff}').unwrap_or(json);
        let members =
            serde_json::from_str::<Members>(json).map_err(|e| SettingsError::json(None, &e))?;
        Self::from_members(members)
    }

    /// Reads the settings from the members of the settings object, nested sections flattened.
    fn from_members(members: Members) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        let mut seen = Vec::new();
        members.for_each_setting("", &mut |key, value| {
            let Some(known) = known_setting(&key)? else {
                return Ok(());
            };
            if seen.contains(&known) {
                return Err(SettingsError::DuplicateSetting { key: known });
            }
            seen.push(known);
            if value.is_null() || value.as_str() == Some("") {
                return Err(SettingsError::EmptyValue { key: known });
            }
            match known {
                EXEC => settings.exec = Some(PathBuf::from(string(EXEC, &value)?)),
                EXEC_ARGUMENTS => settings.exec_arguments = arguments(&value)?,
                EXEC_TIMEOUT => settings.exec_timeout = Some(timeout(&value)?),
                PATH => settings.path = Some(PathBuf::from(string(PATH, &value)?)),
                KMS => settings.kms = Some(string(KMS, &value)?),
                _ => settings.allow_insecure_permissions = boolean(&value)?,
            }
            Ok(())
        })?;
        settings.source()?;
        Ok(settings)
    }

    /// Which master-key source these settings select, checked.
    pub fn source(&self) -> Result<MasterKeySource, SettingsError> {
        if let Some(uri) = &self.kms {
            let other = [(EXEC, self.exec.is_some()), (PATH, self.path.is_some())];
            if let Some((other, _)) = other.into_iter().find(|(_, set)| *set) {
                return Err(SettingsError::KmsAndOther { other });
            }
            return Ok(MasterKeySource::kms(uri)?);
        }
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
            .field("kms", &self.kms)
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
        let members = Members::deserialize(deserializer)?;
        Self::from_members(members).map_err(serde::de::Error::custom)
    }
}

/// The members of a JSON object in the order written, duplicates included (a JSON map would keep
/// only the last of two equal keys, hiding a mistake).
struct Members(Vec<(String, Node)>);

/// A member's value: a nested section, or anything else.
enum Node {
    Section(Members),
    Value(Value),
}

impl Members {
    /// Hands `f` every non-section value with its key, sections joined with `.` as RavenDB does
    /// (`{"Security":{"MasterKey":{"Path":..}}}` is `Security.MasterKey.Path`), and stops at
    /// `f`'s first error. Sections that cannot hold a master-key setting, in any spelling, are
    /// skipped unread, so no key longer than one section name plus one master-key setting's is
    /// ever built, however the file nests its sections.
    fn for_each_setting<E>(
        self,
        prefix: &str,
        f: &mut impl FnMut(String, Value) -> Result<(), E>,
    ) -> Result<(), E> {
        for (key, node) in self.0 {
            let key = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            match node {
                Node::Section(members) if may_hold_master_key_setting(&key) => {
                    members.for_each_setting(&key, f)?;
                }
                Node::Section(_) => {}
                Node::Value(value) => f(key, value)?,
            }
        }
        Ok(())
    }
}

/// Whether a section named `section` (sections joined with `.`) may hold a master-key setting:
/// its letters and digits lead to, or start with, `securitymasterkey`.
fn may_hold_master_key_setting(section: &str) -> bool {
    let folded = letters_and_digits(section);
    MASTER_KEY_FOLDED.starts_with(&folded) || folded.starts_with(MASTER_KEY_FOLDED)
}

/// What every master-key setting's name starts with, folded by [`letters_and_digits`].
const MASTER_KEY_FOLDED: &str = "securitymasterkey";

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Builds a [`Node`]: objects as sections (their duplicates kept), all else as a [`Value`].
struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Value(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Value(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Value(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Value(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Value(Value::from(v)))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Value(Value::Null))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Node::Value(Value::Array(items)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Node, A::Error> {
        MembersVisitor.visit_map(map).map(Node::Section)
    }
}

/// Builds [`Members`] from a JSON object.
struct MembersVisitor;

impl<'de> serde::de::Visitor<'de> for MembersVisitor {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            members.push((key, map.next_value::<Node>()?));
        }
        Ok(Members(members))
    }
}

/// The known master-key setting `key` names (letter case ignored, as .NET configuration keys
/// are); `None` for a key outside `Security.MasterKey`; an error for any other key inside it.
fn known_setting(key: &str) -> Result<Option<&'static str>, SettingsError> {
    if let Some(known) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        return Ok(Some(known));
    }
    let folded = letters_and_digits(key);
    if !folded.starts_with(MASTER_KEY_FOLDED) {
        return Ok(None);
    }
    let suggestion = KNOWN
        .iter()
        .min_by_key(|k| edit_distance(&letters_and_digits(k), &folded))
        .copied()
        .unwrap_or(PATH);
    // The name as written, cut to a length an error line can show.
    let shown = match key.char_indices().nth(MAX_SHOWN_KEY_CHARS) {
        Some((end, _)) => format!("{}...", &key[..end]),
        None => key.to_string(),
    };
    Err(SettingsError::UnknownSetting {
        key: shown,
        suggestion,
    })
}

/// The most characters of an unknown setting's name an error shows.
const MAX_SHOWN_KEY_CHARS: usize = 100;

/// `key` in lower case without anything but ASCII letters and digits: how a key is compared
/// with the known ones to find a misspelt master-key setting (`Security.Master.Key.Path`,
/// `Security_MasterKey_Path` and ` Security:MasterKey:Path` all fold to `securitymasterkeypath`).
fn letters_and_digits(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn string(key: &'static str, value: &Value) -> Result<String, SettingsError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or(SettingsError::InvalidValue {
            key,
            expected: "a string",
        })
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
    /// A Vault / OpenBao Transit key (`VaultTransitProvider`, the `vault-transit` feature).
    VaultTransit(VaultTransitUri),
    /// An AWS KMS key (`AwsKmsProvider`, the `aws-kms` feature).
    AwsKms(AwsKmsUri),
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

    /// The source a KMS URI names: `vault-transit://` ([`VaultTransitUri`]) or `aws-kms://`
    /// ([`AwsKmsUri`]); any other scheme is refused.
    pub fn kms(uri: &str) -> Result<Self, ProviderError> {
        use crate::keys::provider::{aws_format, vault_format};
        if uri.starts_with(vault_format::URI_SCHEME) {
            Ok(MasterKeySource::VaultTransit(VaultTransitUri::parse(uri)?))
        } else if uri.starts_with(aws_format::URI_SCHEME) {
            Ok(MasterKeySource::AwsKms(AwsKmsUri::parse(uri)?))
        } else {
            Err(ProviderError::KmsUri {
                reason: "unknown KMS URI scheme (known: vault-transit://, aws-kms://)",
            })
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
            MasterKeySource::VaultTransit(uri) => vault_transit(uri)?,
            MasterKeySource::AwsKms(uri) => aws_kms(uri)?,
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
            MasterKeySource::VaultTransit(uri) => f.debug_tuple("VaultTransit").field(uri).finish(),
            MasterKeySource::AwsKms(uri) => f.debug_tuple("AwsKms").field(uri).finish(),
        }
    }
}

/// The Transit provider of `uri`, if this build has it.
fn vault_transit(uri: &VaultTransitUri) -> Result<Arc<dyn MasterKeyProvider>, ProviderError> {
    #[cfg(feature = "vault-transit")]
    {
        Ok(Arc::new(crate::keys::provider::VaultTransitProvider::new(
            uri.clone(),
        )))
    }
    #[cfg(not(feature = "vault-transit"))]
    {
        let _ = uri;
        Err(ProviderError::KmsNotBuilt {
            provider: "Vault Transit",
            feature: "vault-transit",
        })
    }
}

/// The AWS KMS provider of `uri`, if this build has it.
fn aws_kms(uri: &AwsKmsUri) -> Result<Arc<dyn MasterKeyProvider>, ProviderError> {
    #[cfg(feature = "aws-kms")]
    {
        Ok(Arc::new(crate::keys::provider::AwsKmsProvider::new(
            uri.clone(),
        )))
    }
    #[cfg(not(feature = "aws-kms"))]
    {
        let _ = uri;
        Err(ProviderError::KmsNotBuilt {
            provider: "AWS KMS",
            feature: "aws-kms",
        })
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
    /// The settings are not a JSON object. The message gives the position only, never the
    /// parser's text: a file given by mistake (a key file) must not be quoted.
    #[error("{}{problem} at line {line} column {column}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Json {
        /// The settings file, if read from one.
        path: Option<PathBuf>,
        /// What is wrong: not JSON, not an object, or cut short.
        problem: &'static str,
        /// The line of the problem (1-based).
        line: usize,
        /// The column of the problem (1-based).
        column: usize,
    },
    /// Both `Security.MasterKey.Exec` and `Security.MasterKey.Path` are set.
    #[error(
        "both Security.MasterKey.Exec and Security.MasterKey.Path are set; set only one \
         (strongbox does not guess which one you meant)"
    )]
    ExecAndPath,
    /// `Security.MasterKey.Kms` is set together with another master-key source.
    #[error(
        "both Security.MasterKey.Kms and {other} are set; set only one (strongbox does not \
         guess which one you meant)"
    )]
    KmsAndOther {
        /// The other source's setting.
        other: &'static str,
    },
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
    /// An unknown setting under `Security.MasterKey` (probably misspelt).
    #[error(
        "unknown master-key setting {}; did you mean {suggestion}? (known: \
         Security.MasterKey.Exec, Security.MasterKey.Exec.Arguments, \
         Security.MasterKey.Exec.TimeoutInSec, Security.MasterKey.Path, Security.MasterKey.Kms, \
         Security.MasterKey.AllowInsecurePermissions)",
        key.escape_debug()
    )]
    UnknownSetting {
        /// The setting, as written (nested sections joined with `.`), cut after 100 characters.
        key: String,
        /// The known setting closest to it.
        suggestion: &'static str,
    },
    /// A master-key setting given twice (in any letter case or nesting).
    #[error("{key} is given more than once (letter case and nesting aside); give it once")]
    DuplicateSetting {
        /// The setting.
        key: &'static str,
    },
    /// A master-key setting that is `null` or an empty string.
    #[error("{key} is empty or null; give a value, or remove the setting")]
    EmptyValue {
        /// The setting.
        key: &'static str,
    },
    /// The selected provider cannot be constructed (e.g. DPAPI off Windows, `HOME` unset).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl SettingsError {
    fn json(path: Option<&Path>, error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let problem = match error.classify() {
            Category::Data => "the settings are not a JSON object",
            Category::Eof => "the settings JSON ends early",
            Category::Syntax | Category::Io => "the settings are not valid JSON",
        };
        SettingsError::Json {
            path: path.map(Path::to_path_buf),
            problem,
            line: error.line(),
            column: error.column(),
        }
    }
}
