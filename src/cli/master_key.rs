//! Master-key selection: `--settings`, `--master-key-path`, `--master-key-exec`,
//! `--master-key-kms` (or their `--to-*` twins of `key rotate`), else the OS default provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use strongbox::keys::{MasterKeySource, default_provider};
use strongbox::{MasterKeyProvider, MasterKeySettings};

use super::args::{MasterKeyArgs, ToMasterKeyArgs};
use super::error::{CliError, CliResult, Context as _, OrFail as _, reads_as_a_key};

/// Where a master key comes from (clap has already refused conflicting options).
#[derive(Debug, Clone)]
pub enum MasterKeyChoice {
    /// A RavenDB-style settings.json.
    Settings(PathBuf),
    /// A key file.
    Path(PathBuf),
    /// A program printing the key.
    Exec {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
        /// Its time limit; `None`: the provider's default.
        timeout: Option<Duration>,
    },
    /// A KMS key's URI.
    Kms(String),
    /// The OS default provider.
    OsDefault,
}

impl MasterKeyChoice {
    /// The global selection.
    pub fn from_global(args: &MasterKeyArgs) -> Self {
        Self::from_parts(
            args.settings.clone(),
            args.master_key_path.clone(),
            args.master_key_exec.clone(),
            args.master_key_exec_arg.clone(),
            args.master_key_exec_timeout,
        )
        .or_kms(args.master_key_kms.as_deref())
    }

    /// The new master key of `key rotate`.
    pub fn from_rotation_target(args: &ToMasterKeyArgs) -> Self {
        Self::from_parts(
            args.to_settings.clone(),
            args.to_master_key_path.clone(),
            args.to_master_key_exec.clone(),
            args.to_master_key_exec_arg.clone(),
            args.to_master_key_exec_timeout,
        )
        .or_kms(args.to_master_key_kms.as_deref())
    }

    /// The KMS choice if `kms` is given (clap refused it with any other source).
    fn or_kms(self, kms: Option<&str>) -> Self {
        match kms {
            Some(uri) => MasterKeyChoice::Kms(uri.to_string()),
            None => self,
        }
    }

    fn from_parts(
        settings: Option<PathBuf>,
        path: Option<PathBuf>,
        exec: Option<PathBuf>,
        args: Vec<String>,
        timeout: Option<u64>,
    ) -> Self {
        match (settings, path, exec) {
            (Some(settings), _, _) => MasterKeyChoice::Settings(settings),
            (_, Some(path), _) => MasterKeyChoice::Path(path),
            (_, _, Some(program)) => MasterKeyChoice::Exec {
                program,
                args,
                timeout: timeout.map(Duration::from_secs),
            },
            (None, None, None) => MasterKeyChoice::OsDefault,
        }
    }

    /// The provider. Nothing is run or read yet: that happens on first use.
    pub fn provider(&self) -> CliResult<Arc<dyn MasterKeyProvider>> {
        match self {
            MasterKeyChoice::Settings(path) => {
                let settings = MasterKeySettings::from_json_file(path).or_fail()?;
                refuse_a_key_as_a_file_name(&settings, path)?;
                settings
                    .provider()
                    .context(|| format!("master-key settings {}", path.display()))
            }
            MasterKeyChoice::Path(path) => MasterKeySettings::path(path).provider().or_fail(),
            MasterKeyChoice::Exec {
                program,
                args,
                timeout,
            } => {
                let mut settings = MasterKeySettings::exec(program).with_exec_arguments(args);
                if let Some(timeout) = timeout {
                    settings = settings.with_exec_timeout(*timeout);
                }
                settings.provider().or_fail()
            }
            MasterKeyChoice::Kms(uri) => MasterKeySettings::kms(uri)
                .provider()
                .context(|| "--master-key-kms"),
            MasterKeyChoice::OsDefault => default_provider().context(|| "default master key"),
        }
    }
}

/// Refuses settings whose `Security.MasterKey.Path` or `.Exec` names no file and reads as a key
/// (whole, or one of its `/`-separated components): the master key written where its file's
/// name belongs. Every later message would print the value; this one does not.
fn refuse_a_key_as_a_file_name(settings: &MasterKeySettings, file: &Path) -> CliResult {
    let (setting, value) = match settings.source() {
        Ok(MasterKeySource::File { path, .. }) => ("Security.MasterKey.Path", path),
        Ok(MasterKeySource::Exec { program, .. }) => ("Security.MasterKey.Exec", program),
        _ => return Ok(()),
    };
    let bytes = value.as_os_str().as_encoded_bytes();
    let reads_as_a_key = reads_as_a_key(bytes) || bytes.split(|b| *b == b'/').any(reads_as_a_key);
    if !reads_as_a_key || value.exists() {
        return Ok(());
    }
    Err(CliError::fail(format!(
        "master-key settings {}: {setting} names no file, and its value (not shown) reads as a \
         key: give the path of the key's file (or program), never the key",
        file.display()
    )))
}
