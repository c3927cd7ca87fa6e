//! The UnixHomeFile provider: a master key generated once into `$HOME/.strongbox/secret.key`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{LazyKey, MasterKeyProvider, Protection, ProviderError};
use crate::key::MasterKey;

/// The default master key on Unix: `$HOME/.strongbox/secret.key`, generated on first use.
///
/// - The directory is created with mode `0700`, the file with `0600`; a file that group or
///   others can access, or a directory they can write to, is refused, as are a key file that is
///   a symbolic link and a file or directory owned by another user (root excepted); no opt-out:
///   this file is strongbox's own.
/// - The key is generated from the operating system's CSPRNG into a temporary file in the same
///   directory (created exclusively), written and synced, then linked into place with an atomic
///   rename that never replaces an existing file. Two processes starting at the same moment
///   therefore end up with the same single key: the loser of the race reads the winner's file,
///   which is complete from the moment it is visible.
/// - A file of the wrong size is an error and is **never regenerated**: regenerating would destroy
///   access to every key it protected.
/// - It is read once, on first use; the key is kept in memory (zeroized on drop).
///
/// Unix only: on other platforms using it fails with [`ProviderError::Unsupported`].
///
/// ```no_run
/// use strongbox::MasterKeyProvider;
/// use strongbox::keys::UnixHomeFileProvider;
///
/// let provider = UnixHomeFileProvider::new()?; // $HOME/.strongbox/secret.key
/// assert!(provider.path().ends_with(".strongbox/secret.key"));
/// println!("master key {:?}", provider.fingerprint()?);
/// # Ok::<(), strongbox::keys::ProviderError>(())
/// ```
pub struct UnixHomeFileProvider {
    path: PathBuf,
    key: LazyKey,
}

impl UnixHomeFileProvider {
    /// The directory under `$HOME` that holds the key file.
    pub const DIR_NAME: &'static str = ".strongbox";
    /// The key file's name.
    pub const FILE_NAME: &'static str = "secret.key";

    /// The provider for `$HOME/.strongbox/secret.key`; [`ProviderError::HomeUnset`] if `HOME` is
    /// unset or empty. Touches no file.
    pub fn new() -> Result<Self, ProviderError> {
        Self::from_env(|name| std::env::var_os(name))
    }

    /// Like [`UnixHomeFileProvider::new`], with `HOME` looked up through `lookup` (so that a
    /// caller, or a test, can supply the environment).
    pub fn from_env(lookup: impl FnOnce(&str) -> Option<OsString>) -> Result<Self, ProviderError> {
        let home = PathBuf::from(
            lookup("HOME")
                .filter(|h| !h.is_empty())
                .ok_or(ProviderError::HomeUnset)?,
        );
        if !home.is_absolute() {
            return Err(ProviderError::HomeNotAbsolute { home });
        }
        Ok(Self::at(home.join(Self::DIR_NAME).join(Self::FILE_NAME)))
    }

    /// The provider for a key file at `path` instead of the default location (same rules:
    /// generated on first use if missing, never regenerated).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            key: LazyKey::default(),
        }
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl MasterKeyProvider for UnixHomeFileProvider {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        self.key
            .get_or_try_init(|| load_or_create(&self.path))
            .map(Protection::MasterKey)
    }
}

impl fmt::Debug for UnixHomeFileProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixHomeFileProvider")
            .field("path", &self.path)
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(not(unix))]
fn load_or_create(_path: &Path) -> Result<MasterKey, ProviderError> {
    Err(ProviderError::Unsupported {
        provider: "UnixHomeFile",
        platform: std::env::consts::OS,
    })
}

#[cfg(unix)]
fn load_or_create(path: &Path) -> Result<MasterKey, ProviderError> {
    use super::file::{ModeCheck, read_key_file};

    let dir = crate::fs::parent_dir(path);
    // Another process may create the file between our read and our create, or (in theory) delete
    // it between our failed create and our read: a few rounds settle it.
    for _ in 0..3 {
        match read_key_file(path, ModeCheck::On) {
            Err(ProviderError::FileMissing { .. }) => {}
            result => {
                check_dir(dir)?;
                return result;
            }
        }
        if let Some(key) = create_key_file(dir, path)? {
            return Ok(key);
        }
    }
    read_key_file(path, ModeCheck::On)
}

/// Refuses a key directory that group or others can write to (they could replace the key).
#[cfg(unix)]
fn check_dir(dir: &Path) -> Result<(), ProviderError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dir).map_err(|source| ProviderError::FileIo {
        path: dir.to_path_buf(),
        source,
    })?;
    super::file::check_owner(dir, std::os::unix::fs::MetadataExt::uid(&meta), false)?;
    super::file::check_permissions(dir, meta.permissions().mode(), 0o022, 0o700, false)
}

/// Generates a key into `path` unless it exists. `Ok(None)`: another process created it first.
#[cfg(unix)]
fn create_key_file(dir: &Path, path: &Path) -> Result<Option<MasterKey>, ProviderError> {
    use std::os::unix::fs::DirBuilderExt;

    use secrecy::ExposeSecret as _;

    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProviderError::FileIo { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    check_dir(dir)?;

    let key = MasterKey::generate().map_err(|_| ProviderError::Random)?;
    // Atomic, owner-only, and never replaces.
    match crate::fs::write_new(path, key.expose_secret()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    }
    Ok(Some(key))
}
