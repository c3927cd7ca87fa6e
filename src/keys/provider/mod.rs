//! Master-key providers: where the key that protects database keys comes from. The design is
//! documented on [`MasterKeyProvider`] (this module is private; its items are re-exported by
//! [`crate::keys`]).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::key::{Fingerprint, KEY_LEN, KeyError, KeyId, MasterKey};
use crate::keys::envelope::Scheme;

pub(crate) mod aws_format;
#[cfg(feature = "aws-kms")]
mod aws_kms;
pub(crate) mod dpapi;
// The DPAPI FFI: the only module of the crate allowed `unsafe` (see lib.rs).
#[cfg(windows)]
#[allow(unsafe_code)]
mod dpapi_windows;
mod exec;
mod file;
mod home;
mod uri_query;
pub(crate) mod vault_format;
#[cfg(feature = "vault-transit")]
mod vault_transit;

pub use aws_format::AwsKmsUri;
#[cfg(feature = "aws-kms")]
pub use aws_kms::AwsKmsProvider;
pub use dpapi::DpapiProvider;
pub use exec::ExecProvider;
pub use file::FileProvider;
pub use home::UnixHomeFileProvider;
pub use vault_format::VaultTransitUri;
#[cfg(feature = "vault-transit")]
pub use vault_transit::VaultTransitProvider;

/// The name of the settings key that allows a master-key file readable by group or others.
pub(crate) const ALLOW_INSECURE_PERMISSIONS_SETTING: &str =
    "Security.MasterKey.AllowInsecurePermissions";

/// A source of protection for data keys: where the master key comes from.
///
/// Its answer, a [`Protection`], is either a 256-bit [`MasterKey`] (the [`ExecProvider`],
/// [`FileProvider`] and [`UnixHomeFileProvider`] all hand out key bytes), or a [`Sealer`]: a
/// service that protects secrets without exposing its key ([`DpapiProvider`], the operating
/// system's protection of secrets for the current user).
///
/// # Why the trait is this small
///
/// The wrapping itself (HKDF-SHA256 from a random salt, AES-256-GCM with the blob header as
/// associated data) lives in exactly one place, [`ProtectedKey`](crate::keys::ProtectedKey),
/// for every provider. A provider therefore cannot get the cryptography wrong, and the same 256-bit master
/// key opens the same blobs whichever provider delivered it: the provider kind is not part of
/// what a blob records or checks. An embedder's own provider (a KMS client, say) implements one
/// method, [`MasterKeyProvider::protection`], returning [`Protection::MasterKey`].
///
/// A provider can say "not mine" apart from "failed". A blob records its scheme and the
/// [`Fingerprint`] of the master key that protected it (a sealer records its own key, if any, in
/// its sealed secret: [`Sealer::recognizes`]), so
/// [`ProtectedKey::is_protected_by`](crate::keys::ProtectedKey::is_protected_by) and the
/// `WrongMasterKey` / `SchemeMismatch` / `OtherSealerKey` errors of
/// [`ProtectedKey::unprotect`](crate::keys::ProtectedKey::unprotect) (see
/// [`EnvelopeError::is_not_mine`](crate::keys::EnvelopeError::is_not_mine)) report a key that
/// belongs to another master key, while a [`ProviderError`] means the provider itself failed (program
/// not found, file unreadable, ...).
///
/// Providers that run a program or read a file do so once, on first use, and keep the key in
/// memory (zeroized on drop); they are safe to share between threads
/// (`Arc<dyn MasterKeyProvider>`). A failure is not cached: the next use tries again.
/// Implementations must be cheap to call repeatedly: load a key once and keep it.
///
/// ```
/// use std::sync::Arc;
/// use strongbox::{DataKey, MasterKey, MasterKeyProvider, ProtectedKey};
/// use strongbox::keys::{Protection, ProviderError};
///
/// /// A provider holding a key fetched from elsewhere (a KMS, a test fixture, ...).
/// #[derive(Debug)]
/// struct InMemory(MasterKey);
///
/// impl MasterKeyProvider for InMemory {
///     fn protection(&self) -> Result<Protection<'_>, ProviderError> {
///         Ok(Protection::MasterKey(&self.0))
///     }
/// }
///
/// let provider = InMemory(MasterKey::generate()?);
/// let key = DataKey::generate()?;
/// let blob = ProtectedKey::protect(&key, &provider)?;
/// assert_eq!(blob.fingerprint(), Some(provider.0.fingerprint()));
/// assert_eq!(blob.unprotect(&provider)?.id(), key.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait MasterKeyProvider: Send + Sync + fmt::Debug {
    /// How this provider protects data keys. The first call may run a program or read a file;
    /// later calls return the key kept in memory.
    fn protection(&self) -> Result<Protection<'_>, ProviderError>;

    /// The fingerprint of this provider's master key, or `None` for a provider that holds no key
    /// (DPAPI). Loads the key if needed.
    fn fingerprint(&self) -> Result<Option<Fingerprint>, ProviderError> {
        Ok(match self.protection()? {
            Protection::MasterKey(key) => Some(key.fingerprint()),
            Protection::Sealer(_) => None,
        })
    }
}

impl<P: MasterKeyProvider + ?Sized> MasterKeyProvider for Arc<P> {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        (**self).protection()
    }
}

impl<P: MasterKeyProvider + ?Sized> MasterKeyProvider for &P {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        (**self).protection()
    }
}

/// How a [`MasterKeyProvider`] protects data keys.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Protection<'a> {
    /// A 256-bit master key: data keys are wrapped with it by the shared master-key scheme
    /// (HKDF-SHA256 + AES-256-GCM, see `docs/KEYBLOB.md`).
    MasterKey(&'a MasterKey),
    /// A service that seals each blob's wrapping secret without exposing its own key (Windows
    /// DPAPI; only constructible where the service exists).
    Sealer(&'a dyn Sealer),
}

/// A service that protects secrets under a key it never exposes: the operating system's
/// protection of a user's secrets ([`DpapiProvider`]), a key-management service.
///
/// # What it seals
///
/// The data key itself never reaches a sealer. For every blob,
/// [`ProtectedKey`](crate::keys::ProtectedKey) draws a fresh random 256-bit secret, wraps the
/// data key under a key derived from that secret (HKDF-SHA256 + AES-256-GCM, the same wrap as for a
/// master key), and asks the sealer to seal the secret. The blob stores the sealer's output as
/// opaque bytes, its *sealed secret*, whose layout belongs to the sealer's [`Scheme`]
/// (`docs/KEYBLOB.md`): anything the sealer must find again, such as the id of the remote key
/// or its own entropy, goes inside those bytes.
///
/// # Context
///
/// Both calls get a [`SealContext`]: the data key's id and the blob header. A sealer that can
/// bind associated data to its ciphertext (a KMS encryption context, say) binds the header, so
/// that a sealed secret moved into another blob does not unseal. The envelope binds the sealed
/// bytes to the header in any case: they are part of the wrap's associated data.
///
/// # Failure
///
/// A sealer may be remote and slow: it is called synchronously, once per blob, and reports
/// every failure (refusal, timeout, unreachable service) as a [`ProviderError`], never a panic.
/// No error it returns may carry the secret.
///
/// Each sealer has a scheme byte in the blob header and a sealed-secret layout specified in
/// `docs/KEYBLOB.md`, so the trait can only be implemented in this crate. An embedder with its
/// own key service delivers a 256-bit key as [`Protection::MasterKey`] instead.
pub trait Sealer: private::InCrate + Send + Sync + fmt::Debug {
    /// The scheme recorded in the header of the blobs it seals (never [`Scheme::MasterKey`]).
    fn scheme(&self) -> Scheme;

    /// Seals `secret` for the blob described by `context`; the result is stored in the blob as
    /// its sealed secret and must follow the scheme's layout.
    fn seal(
        &self,
        secret: &[u8; KEY_LEN],
        context: &SealContext<'_>,
    ) -> Result<Vec<u8>, ProviderError>;

    /// Unseals a sealed secret made by [`Sealer::seal`] for the same context. A result of another
    /// length than the secret's makes the blob corrupt.
    fn unseal(
        &self,
        sealed: &[u8],
        context: &SealContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError>;

    /// Whether `sealed` (of this sealer's scheme) names this sealer's key, judged without
    /// unsealing: `false` reports the blob as another key's, as a master-key fingerprint does.
    /// A sealer whose output names no key (DPAPI) answers `true`.
    fn recognizes(&self, sealed: &[u8]) -> bool;

    /// Re-seals `sealed` (recognized by [`Sealer::recognizes`]) under the service's newest key
    /// version, without the secret leaving the service (Transit's `rewrap`); `None` when it is
    /// already under the newest version, or the service has no versions (the default).
    fn rewrap(
        &self,
        sealed: &[u8],
        context: &SealContext<'_>,
    ) -> Result<Option<Vec<u8>>, ProviderError> {
        let _ = (sealed, context);
        Ok(None)
    }
}

pub(crate) mod private {
    /// Restricts [`Sealer`](super::Sealer) to this crate: each one needs a scheme byte.
    pub trait InCrate {}
}

/// What a sealed secret belongs to, given to every [`Sealer`] call: the data key's id and the
/// blob header (magic, version, scheme, fingerprint field, key id; see `docs/KEYBLOB.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext<'a> {
    key_id: KeyId,
    header: &'a [u8],
}

impl<'a> SealContext<'a> {
    pub(crate) fn new(key_id: KeyId, header: &'a [u8]) -> Self {
        Self { key_id, header }
    }

    /// The id of the data key the blob protects (the database's key id).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The blob header, the associated data to bind where the service can.
    pub fn header(&self) -> &'a [u8] {
        self.header
    }
}

/// Checks the layout of a sealed secret of `scheme` (not its authenticity): the reason it is
/// malformed otherwise.
pub(crate) fn check_sealed(scheme: Scheme, sealed: &[u8]) -> Result<(), &'static str> {
    match scheme {
        Scheme::MasterKey => Err("the master-key scheme has no sealed secret"),
        Scheme::Dpapi => dpapi::split_sealed(sealed).map(|_| ()),
        Scheme::VaultTransit => vault_format::TransitSealed::parse(sealed).map(|_| ()),
        Scheme::AwsKms => aws_format::AwsSealed::parse(sealed).map(|_| ()),
    }
}

/// The ciphertext that ends a sealer's sealed secret (`rest`): its length (big-endian u16, 1
/// to `max`), then exactly that many bytes. Else the reason the layout is wrong.
pub(crate) fn last_ciphertext(rest: &[u8], max: usize) -> Result<&[u8], &'static str> {
    let (len, ciphertext) = rest
        .split_first_chunk::<2>()
        .ok_or("truncated sealed secret")?;
    let len = usize::from(u16::from_be_bytes(*len));
    if len == 0 || len > max {
        return Err("the ciphertext length of the sealed secret is out of its scheme's range");
    }
    if ciphertext.len() != len {
        return Err("the ciphertext length of the sealed secret does not match the blob's length");
    }
    Ok(ciphertext)
}

/// The OS default master-key provider: [`DpapiProvider`] on Windows, [`UnixHomeFileProvider`]
/// (`$HOME/.strongbox/secret.key`) elsewhere.
///
/// Constructing it touches no file; the home key file is created (or read) on first use.
pub fn default_provider() -> Result<Arc<dyn MasterKeyProvider>, ProviderError> {
    #[cfg(windows)]
    {
        Ok(Arc::new(DpapiProvider::new()?))
    }
    #[cfg(not(windows))]
    {
        Ok(Arc::new(UnixHomeFileProvider::new()?))
    }
}

/// Why a master-key provider could not deliver its key (or protect / unprotect with it).
///
/// No variant ever carries key bytes: a wrong-length key is reported by its length, a program's
/// output only through the start of its standard error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The key program does not exist (or is not on `PATH`).
    #[error("the master-key program {} was not found", program.display())]
    ExecNotFound {
        /// The program as configured.
        program: PathBuf,
    },
    /// The key program exists but cannot be executed (no execute permission, not a program).
    #[error("the master-key program {} cannot be executed (check that it is an executable file with a `#!` line): {source}", program.display())]
    ExecNotExecutable {
        /// The program as configured.
        program: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The key program could not be started, or its output could not be read.
    #[error("could not run the master-key program {}: {source}", program.display())]
    ExecIo {
        /// The program as configured.
        program: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The key program exited unsuccessfully.
    #[error(
        "the master-key program {} {}{}",
        program.display(),
        match code { Some(code) => format!("exited with status {code}"), None => "was killed by a signal".to_string() },
        stderr_suffix(stderr)
    )]
    ExecFailed {
        /// The exit code, `None` if a signal ended the program.
        code: Option<i32>,
        /// The program as configured.
        program: PathBuf,
        /// The start of its standard error (capped, lossily decoded, trimmed).
        stderr: String,
    },
    /// The key program did not finish in time and was killed.
    #[error(
        "the master-key program {} did not finish within {} s and was killed{}",
        program.display(),
        timeout.as_secs_f64(),
        stderr_suffix(stderr)
    )]
    ExecTimeout {
        /// The program as configured.
        program: PathBuf,
        /// The time limit.
        timeout: Duration,
        /// The start of its standard error, if it wrote any before it was killed.
        stderr: String,
    },
    /// The key program exited, but a process it started kept its output open past the timeout.
    #[error(
        "the master-key program {} exited, but its output stayed open for {} s \
         (a background process it started still holds it)",
        program.display(),
        timeout.as_secs_f64()
    )]
    ExecOutputHeldOpen {
        /// The program as configured.
        program: PathBuf,
        /// The time limit.
        timeout: Duration,
    },
    /// The key program printed output of the wrong length.
    #[error(
        "the master-key program {} printed {len} bytes; expected exactly 32 raw bytes, or one line \
         of base64 (44 characters) or hexadecimal (64 digits)",
        program.display()
    )]
    ExecWrongLength {
        /// The program as configured.
        program: PathBuf,
        /// How many bytes it printed.
        len: usize,
    },
    /// The key program printed text of a key's length in no valid encoding.
    #[error("the master-key program {} printed a key that does not decode: {source}", program.display())]
    ExecBadEncoding {
        /// The program as configured.
        program: PathBuf,
        /// What was wrong with it.
        source: KeyError,
    },
    /// The key file does not exist (a configured key file is never generated).
    #[error("the master-key file {} does not exist", path.display())]
    FileMissing {
        /// The configured path.
        path: PathBuf,
    },
    /// The key file is empty (a configured key file is never generated).
    #[error(
        "the master-key file {} is empty; it must hold a 256-bit key (strongbox never generates \
         a key into a configured file)",
        path.display()
    )]
    FileEmpty {
        /// The configured path.
        path: PathBuf,
    },
    /// The key file holds the wrong number of bytes.
    #[error(
        "the master-key file {} holds {len} bytes; expected exactly 32 raw bytes, or one line of \
         base64 (44 characters) or hexadecimal (64 digits)",
        path.display()
    )]
    FileWrongLength {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// The key file holds text of a key's length in no valid encoding.
    #[error("the master-key file {} does not hold a valid key: {source}", path.display())]
    FileBadEncoding {
        /// The key file.
        path: PathBuf,
        /// What was wrong with it.
        source: KeyError,
    },
    /// The key file (or its directory) could not be read, created or written.
    #[error("master-key file {}: {source}", path.display())]
    FileIo {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A new master-key file was to be created ([`FileProvider::create_new`]) where something
    /// exists already; it is left as it is.
    #[error(
        "the master-key file {} already exists; refusing to overwrite it (every key it protects \
         would be lost with it)",
        path.display()
    )]
    FileExists {
        /// The path.
        path: PathBuf,
    },
    /// The key file or its directory is accessible to group or others.
    #[error("{}", insecure_message(path, *mode, *expected, *opt_out))]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode it should have (`0o600` for a file, `0o700` for a directory).
        expected: u32,
        /// Whether the `Security.MasterKey.AllowInsecurePermissions` opt-out applies.
        opt_out: bool,
    },
    /// The key file is a symbolic link (Unix): whoever can change the link chooses the key.
    #[error(
        "{} is a symbolic link; point the setting at the key file itself{}",
        path.display(),
        opt_out_suffix(*opt_out)
    )]
    KeyFileIsSymlink {
        /// The configured path.
        path: PathBuf,
        /// Whether the `Security.MasterKey.AllowInsecurePermissions` opt-out applies.
        opt_out: bool,
    },
    /// The key file or its directory belongs to another user than the one running this process
    /// (and not to root): that user could replace the key (Unix).
    #[error(
        "{} is owned by uid {owner}, but this process runs as uid {current}; run `chown {current} {}`{}",
        path.display(),
        path.display(),
        opt_out_suffix(*opt_out)
    )]
    WrongOwner {
        /// The file or directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The uid of this process.
        current: u32,
        /// Whether the `Security.MasterKey.AllowInsecurePermissions` opt-out applies.
        opt_out: bool,
    },
    /// `HOME` is not set (or empty), so the default key file has no place.
    #[error(
        "HOME is not set, so the default master-key file $HOME/.strongbox/secret.key has no \
         location; set HOME, or configure Security.MasterKey.Path or Security.MasterKey.Exec"
    )]
    HomeUnset,
    /// `HOME` is not an absolute path.
    #[error("HOME ({}) is not an absolute path", home.display())]
    HomeNotAbsolute {
        /// The value of `HOME`.
        home: PathBuf,
    },
    /// This provider does not exist on this platform.
    #[error(
        "the {provider} master-key provider is unsupported on this platform ({platform}); \
         configure Security.MasterKey.Exec or Security.MasterKey.Path instead"
    )]
    Unsupported {
        /// The provider's name.
        provider: &'static str,
        /// The platform (`std::env::consts::OS`).
        platform: &'static str,
    },
    /// The Windows Data Protection API refused an operation. The message says what the code
    /// means where that is known, e.g. "DPAPI refused to unprotect: the key was protected by
    /// another user or the blob is corrupt (error 13)".
    #[error("{}", dpapi::error_message(operation, *code))]
    Dpapi {
        /// `"protect"` or `"unprotect"`.
        operation: &'static str,
        /// The Windows error code (`GetLastError`).
        code: u32,
    },
    /// A sealer's service returned output of a size a key blob cannot hold.
    #[error("{sealer} returned {len} bytes; a key blob holds 1 to {max} bytes of its output")]
    SealedLength {
        /// The sealer's name.
        sealer: &'static str,
        /// The length returned.
        len: usize,
        /// The largest length the sealer's scheme allows.
        max: usize,
    },
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A KMS URI is malformed. The message never quotes the URI.
    #[error("invalid KMS URI: {reason}")]
    KmsUri {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A KMS URI names a provider this build of strongbox does not have.
    #[error(
        "the KMS URI names {provider}, which this build of strongbox does not include (Cargo \
         feature `{feature}`)"
    )]
    KmsNotBuilt {
        /// The provider.
        provider: &'static str,
        /// The Cargo feature that adds it.
        feature: &'static str,
    },
    /// No KMS token could be had, or its file could not be read (the token is never shown).
    #[error("{uri}: {reason}")]
    KmsToken {
        /// The KMS key's URI.
        uri: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The URI's `ca_file` could not be read, or holds no PEM certificate.
    #[error("{uri}: ca_file {}: {reason}", path.display())]
    KmsCaFile {
        /// The KMS key's URI.
        uri: String,
        /// The CA file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The KMS could not be reached: connection refused or timed out (tried a bounded number of
    /// times), or the TLS handshake failed (tried once).
    #[error("{uri}: the KMS could not be reached ({attempts} attempt(s)): {reason}")]
    KmsUnreachable {
        /// The KMS key's URI.
        uri: String,
        /// How many requests were tried.
        attempts: u32,
        /// The last attempt's failure.
        reason: String,
    },
    /// The KMS refused the token: missing, wrong, expired or without the policy the operation
    /// needs.
    #[error(
        "{uri}: permission denied (HTTP {status}): the token is wrong, expired, or lacks the \
         policy for this key"
    )]
    KmsAccessDenied {
        /// The KMS key's URI.
        uri: String,
        /// The HTTP status.
        status: u16,
    },
    /// The KMS key does not exist (deleted, misspelt) or cannot be used for this operation.
    #[error("{uri}: the KMS key was not found, or does not support encryption")]
    KmsKeyNotFound {
        /// The KMS key's URI.
        uri: String,
    },
    /// The key version that sealed the blob may no longer decrypt (trimmed, or below the key's
    /// minimum decryption version).
    #[error(
        "{uri}: the KMS key version that sealed this key may no longer decrypt (trimmed or below \
         the key's minimum decryption version)"
    )]
    KmsKeyVersionRetired {
        /// The KMS key's URI.
        uri: String,
    },
    /// The KMS refused to decrypt under this blob's context: the sealed secret belongs to
    /// another blob (another database), or the blob was altered.
    #[error(
        "{uri}: the KMS refused to decrypt: the key blob's context does not match (a blob \
         copied from another database, or altered)"
    )]
    KmsWrongContext {
        /// The KMS key's URI.
        uri: String,
    },
    /// The Transit key was not created with `derived=true`, so Transit would ignore the
    /// context that binds a sealed secret to its blob.
    #[error(
        "{uri}: the Transit key is not a derived key; create it with derived=true (Transit \
         ignores the context that binds a key blob otherwise)"
    )]
    KmsKeyNotDerived {
        /// The KMS key's URI.
        uri: String,
    },
    /// The KMS key is disabled, or scheduled for deletion (AWS KMS's `DisabledException`,
    /// `KMSInvalidStateException`).
    #[error("{uri}: the KMS key is disabled or pending deletion")]
    KmsKeyDisabled {
        /// The KMS key's URI.
        uri: String,
    },
    /// The KMS says the key blob was sealed by another KMS key than the one the URI names (AWS
    /// KMS's `IncorrectKeyException`, for an alias that now points elsewhere, say).
    #[error("{uri}: the key blob was sealed by another KMS key than this one")]
    KmsOtherKey {
        /// The KMS key's URI.
        uri: String,
    },
    /// The AWS credentials or region could not be had (nothing about them is shown).
    #[error("{uri}: {reason}")]
    KmsCredentials {
        /// The KMS key's URI.
        uri: String,
        /// What is missing.
        reason: &'static str,
    },
    /// The KMS answered with an HTTP status not otherwise classified (its body is not shown).
    #[error("{uri}: the KMS refused the request (HTTP {status})")]
    KmsRefused {
        /// The KMS key's URI.
        uri: String,
        /// The HTTP status.
        status: u16,
    },
    /// The KMS answered something that is not the expected response (its body is not shown).
    #[error("{uri}: unexpected KMS response: {reason}")]
    KmsBadResponse {
        /// The KMS key's URI.
        uri: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// A provider implemented outside this crate failed.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its error output begins: {stderr}")
    }
}

fn opt_out_suffix(opt_out: bool) -> String {
    if opt_out {
        format!(
            ", or, where that cannot be done (e.g. a mounted secret volume), set \
             {ALLOW_INSECURE_PERMISSIONS_SETTING} to true"
        )
    } else {
        String::new()
    }
}

fn insecure_message(path: &std::path::Path, mode: u32, expected: u32, opt_out: bool) -> String {
    let mut msg = format!(
        "{} has mode {mode:03o}, which lets group or others access it; run `chmod {expected:o} {}`",
        path.display(),
        path.display()
    );
    if opt_out {
        msg.push_str(&format!(
            ", or, where modes cannot be set (e.g. a mounted secret volume), set \
             {ALLOW_INSECURE_PERMISSIONS_SETTING} to true"
        ));
    }
    msg
}

/// A master key loaded on first use and kept for the provider's lifetime.
///
/// Initialization is serialized, so a program runs (or a file is read) once even when many
/// threads ask at the same moment; a failure is returned to its caller and not cached.
#[derive(Default)]
pub(crate) struct LazyKey {
    key: OnceLock<MasterKey>,
    init: Mutex<()>,
}

impl LazyKey {
    pub(crate) fn get_or_try_init(
        &self,
        load: impl FnOnce() -> Result<MasterKey, ProviderError>,
    ) -> Result<&MasterKey, ProviderError> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        // A poisoned lock only means another loader panicked; nothing it guards can be torn.
        let _guard = self.init.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let key = load()?;
        Ok(self.key.get_or_init(|| key))
    }

    /// The fingerprint of the loaded key, for `Debug`.
    pub(crate) fn fingerprint(&self) -> Option<Fingerprint> {
        self.key.get().map(MasterKey::fingerprint)
    }
}

impl fmt::Debug for LazyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fingerprint() {
            Some(fp) => write!(f, "Loaded({fp})"),
            None => f.write_str("NotLoaded"),
        }
    }
}
