//! The File provider: a file holds the master key.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use super::{LazyKey, MasterKeyProvider, Protection, ProviderError};
use crate::key::{KeyError, MasterKey};

/// Most bytes read from a key file; a key is at most 66 bytes.
const FILE_CAP: usize = 4096;

/// Reads the master key from a file: the `Security.MasterKey.Path` setting.
///
/// The file holds exactly 32 raw bytes, or standard base64 (44 characters) or hexadecimal
/// (64 digits) with ASCII whitespace around it (`docs/KEYBLOB.md`, "Key text"). A missing, empty or wrong-sized
/// file is an error; a key is never generated into a configured path. On Unix, a file that group
/// or others can access (any of the mode bits `0o077`) is refused with a message naming
/// `chmod 600`, unless [`FileProvider::allow_insecure_permissions`] is set (the
/// `Security.MasterKey.AllowInsecurePermissions` setting), for secret volumes whose modes cannot
/// be chosen. Unless so opted out, a key path that is a symbolic link, and a key file owned by
/// another user than the process's (root excepted), are refused too (as ssh refuses such
/// keys); the opt-out covers them, for secret volumes made of links (Kubernetes).
///
/// The file is read once, on first use; the key is kept in memory (zeroized on drop).
///
/// ```no_run
/// use strongbox::MasterKeyProvider;
/// use strongbox::keys::FileProvider;
///
/// let provider = FileProvider::new("/etc/myengine/master.key");
/// println!("master key {:?}", provider.fingerprint()?);
/// # Ok::<(), strongbox::keys::ProviderError>(())
/// ```
pub struct FileProvider {
    path: PathBuf,
    allow_insecure_permissions: bool,
    key: LazyKey,
}

impl FileProvider {
    /// A provider reading the key from `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            allow_insecure_permissions: false,
            key: LazyKey::default(),
        }
    }

    /// Creates the master-key file `path`, holding a new random key, and returns the provider
    /// that reads it.
    ///
    /// The key comes from the operating system's CSPRNG and is written as its 32 raw bytes
    /// (`docs/KEYBLOB.md`, "Key text"). The file is created exclusively under a temporary name
    /// `.<name>.XXXXXX.tmp` in the same directory, owner-only from its first byte (mode `0600`
    /// on Unix, whatever the umask), synced, then renamed to `path` without ever replacing
    /// anything, and the directory is synced: the file is complete or absent, never half
    /// written. An existing `path` is [`ProviderError::FileExists`]; a missing directory, or
    /// any other failure, [`ProviderError::FileIo`]. The key is read back, as on any first use,
    /// when the provider is first used.
    ///
    /// Back the file up: every key it protects is lost with it. `strongbox master-key generate`
    /// does the same.
    ///
    /// ```
    /// use strongbox::MasterKeyProvider;
    /// use strongbox::keys::FileProvider;
    /// # let dir = tempfile::tempdir()?;
    ///
    /// let provider = FileProvider::create_new(dir.path().join("master.key"))?;
    /// println!("new master key {}", provider.fingerprint()?.expect("a file holds a master key"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_new(path: impl Into<PathBuf>) -> Result<Self, ProviderError> {
        let path = path.into();
        let key = MasterKey::generate().map_err(|_| ProviderError::Random)?;
        match crate::fs::write_new(&path, key.expose_secret()) {
            Ok(()) => Ok(Self::new(path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(ProviderError::FileExists { path })
            }
            Err(source) => Err(ProviderError::FileIo { path, source }),
        }
    }

    /// Accepts a key file that group or others can access (Unix only; default `false`).
    pub fn allow_insecure_permissions(mut self, allow: bool) -> Self {
        self.allow_insecure_permissions = allow;
        self
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl MasterKeyProvider for FileProvider {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        self.key
            .get_or_try_init(|| {
                read_key_file(
                    &self.path,
                    if self.allow_insecure_permissions {
                        ModeCheck::Off
                    } else {
                        ModeCheck::OnWithOptOut
                    },
                )
            })
            .map(Protection::MasterKey)
    }
}

impl fmt::Debug for FileProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileProvider")
            .field("path", &self.path)
            .field(
                "allow_insecure_permissions",
                &self.allow_insecure_permissions,
            )
            .field("key", &self.key)
            .finish()
    }
}

/// Whether a key file's owner and permissions are checked (Unix), and whether a refusal may
/// mention the provider's opt-out setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModeCheck {
    /// Not checked (the caller opted out).
    Off,
    /// Checked; the provider has no opt-out (the home-file provider, Unix only).
    #[cfg_attr(not(unix), allow(dead_code))]
    On,
    /// Checked; a refusal mentions `allow_insecure_permissions`.
    OnWithOptOut,
}

/// Reads and parses a key file, after `check`ing it.
pub(crate) fn read_key_file(path: &Path, check: ModeCheck) -> Result<MasterKey, ProviderError> {
    let io_err = |source| ProviderError::FileIo {
        path: path.to_path_buf(),
        source,
    };
    let (mut file, meta) = open_key_file(path, check)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(FILE_CAP + 1));
    (&mut file)
        .take(FILE_CAP as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.is_empty() {
        return Err(ProviderError::FileEmpty {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() > FILE_CAP {
        return Err(ProviderError::FileWrongLength {
            path: path.to_path_buf(),
            len: usize::try_from(meta.len()).unwrap_or(usize::MAX),
        });
    }
    MasterKey::from_encoded(&bytes).map_err(|e| match e {
        KeyError::UnrecognizedEncoding { len } => ProviderError::FileWrongLength {
            path: path.to_path_buf(),
            len,
        },
        source => ProviderError::FileBadEncoding {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Opens a key file for reading: a regular file; with `check` on (Unix), not a symbolic link,
/// the very file checked, owned by this user and not accessible to group or others.
fn open_key_file(path: &Path, check: ModeCheck) -> Result<(File, Metadata), ProviderError> {
    let io_err = |source| ProviderError::FileIo {
        path: path.to_path_buf(),
        source,
    };
    let missing = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => ProviderError::FileMissing {
            path: path.to_path_buf(),
        },
        _ => io_err(e),
    };
    let opt_out = check == ModeCheck::OnWithOptOut;
    let is_link = || ProviderError::KeyFileIsSymlink {
        path: path.to_path_buf(),
        opt_out,
    };
    // The link itself, before opening: a key path that is a symbolic link is refused.
    #[cfg(unix)]
    let link_meta = match check {
        ModeCheck::Off => None,
        _ => Some(std::fs::symlink_metadata(path).map_err(missing)?),
    };
    #[cfg(unix)]
    if link_meta
        .as_ref()
        .is_some_and(|m| m.file_type().is_symlink())
    {
        return Err(is_link());
    }
    let file = crate::fs::open_regular(path).map_err(missing)?;
    let meta = file.metadata().map_err(io_err)?;
    #[cfg(unix)]
    if let Some(link_meta) = link_meta {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // The file opened must be the one checked (no swap for a link in between).
        if (link_meta.dev(), link_meta.ino()) != (meta.dev(), meta.ino()) {
            return Err(is_link());
        }
        check_owner(path, meta.uid(), opt_out)?;
        check_permissions(path, meta.permissions().mode(), 0o077, 0o600, opt_out)?;
    }
    #[cfg(not(unix))]
    let _ = (is_link, opt_out);
    Ok((file, meta))
}

/// The uid this process creates files as (its effective uid), found without `libc` from the
/// owner of an unnamed temporary file; `None` if no temporary file can be created (then owners
/// are not checked, and modes still are).
#[cfg(unix)]
pub(crate) fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    static UID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *UID.get_or_init(|| {
        tempfile::tempfile()
            .and_then(|f| f.metadata())
            .ok()
            .map(|m| m.uid())
    })
}

/// Refuses a key file or directory whose permission bits (`mode`) include one of `forbidden`;
/// the error names `expected`, the mode to set.
#[cfg(unix)]
pub(crate) fn check_permissions(
    path: &Path,
    mode: u32,
    forbidden: u32,
    expected: u32,
    opt_out: bool,
) -> Result<(), ProviderError> {
    let mode = mode & 0o7777;
    if mode & forbidden != 0 {
        return Err(ProviderError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
            expected,
            opt_out,
        });
    }
    Ok(())
}

/// Refuses a key file or directory owned by another user than this process's (root may own it,
/// as ssh allows).
#[cfg(unix)]
pub(crate) fn check_owner(path: &Path, owner: u32, opt_out: bool) -> Result<(), ProviderError> {
    match current_uid() {
        Some(current) if owner != current && owner != 0 => Err(ProviderError::WrongOwner {
            path: path.to_path_buf(),
            owner,
            current,
            opt_out,
        }),
        _ => Ok(()),
    }
}
