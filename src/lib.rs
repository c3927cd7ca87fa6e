//! # strongbox
//!
//! Envelope-encrypted database keys and authenticated, streaming backup encryption for storage
//! engines.
//!
//! - [`DataKey`]: a 256-bit database key (or a user-provided backup key), zeroized on drop,
//!   never printed.
//! - [`MasterKey`]: the 256-bit key that protects data keys at rest.
//! - [`BackupWriter`] / [`RestoreReader`]: the authenticated, streaming encryption of a backup
//!   of any size in constant memory, with random access on restore (format: `docs/FORMAT.md`).
//! - [`MasterKeyProvider`]: where the master key comes from: [`ExecProvider`],
//!   [`FileProvider`], [`UnixHomeFileProvider`] (the Unix default) and [`DpapiProvider`] (the
//!   Windows default), chosen in code or from a `settings.json` with [`MasterKeySettings`].
//! - [`ProtectedKey`]: a data key protected by a provider, as self-contained, versioned bytes
//!   (specified in `docs/KEYBLOB.md`).
//! - [`DatabaseKeyStore`]: one protected key file ([`KEY_FILE_NAME`]) per database directory:
//!   create, load, offline get-key / put-key, master-key rotation.
//! - [`SnapshotBackup`], [`LogicalBackup`], [`restore`], [`verify`] and [`inspect`]: database backups and
//!   restores with RavenDB's encryption rules ([`BackupEncryptionSettings`]), an authenticated
//!   manifest, the key carried wrapped under the master keys ([`MasterKeys`]), and a [`Channel`]
//!   the engine must name for every operation (format and rules: `docs/BACKUP.md`).
//!
//! The public surface is flat: every type is re-exported here at the crate root (for example
//! `strongbox::ExecProvider`, `strongbox::ProtectedKey`), and the modules that define them
//! (`provider`, `settings`, `envelope`, `store`) are private.
//!
//! ## Cargo features
//!
//! Without default features (`default-features = false`) the crate is the keys, the providers
//! (set up in code), [`ProtectedKey`], [`DatabaseKeyStore`] and the backup stream, on ring,
//! zeroize, secrecy, thiserror and tempfile alone (and rustix on Unix, windows-sys on Windows).
//! - `backup`: database backups ([`SnapshotBackup`], [`LogicalBackup`], [`restore`], [`verify`],
//!   [`inspect`]) and their JSON ([`BackupEncryptionSettings`], [`RestoreConfig`]); tar, zstd,
//!   serde, serde_json.
//! - `settings`: [`MasterKeySettings`], the provider chosen from an engine's `settings.json`;
//!   serde, serde_json, shell-words. A feature of its own, apart from `backup`, so that an engine
//!   can read its settings without the backup code.
//! - `cli` (the one default): the `strongbox` tool; implies `backup` and `settings`.
//!
//! ```
//! # #[cfg(feature = "settings")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use strongbox::secrecy::ExposeSecret as _;
//! use strongbox::{DatabaseKeyStore, MasterKeySettings};
//! # let tmp = tempfile::tempdir()?;
//! # let master = tmp.path().join("master.key");
//! # std::fs::write(&master, strongbox::MasterKey::generate()?.to_base64().expose_secret())?;
//! # #[cfg(unix)] { use std::os::unix::fs::PermissionsExt;
//! # std::fs::set_permissions(&master, std::fs::Permissions::from_mode(0o600))?; }
//! # let settings_json = format!(r#"{{"Security.MasterKey.Path": {:?}}}"#, master);
//! # let db = tmp.path().join("orders"); std::fs::create_dir(&db)?;
//!
//! // The engine's settings.json chooses the master key; nothing is read until first use.
//! let provider = MasterKeySettings::from_json_str(&settings_json)?.provider()?;
//! let store = DatabaseKeyStore::new(provider);
//!
//! let key = store.create(&db)?;                       // <db>/secret.key.encrypted
//! let again = store.load_expecting(&db, key.id())?;   // on every open
//! assert_eq!(again.expose_secret(), key.expose_secret());
//! # Ok(()) }
//! # #[cfg(not(feature = "settings"))] fn main() {}
//! ```
// No `unsafe` anywhere, except in the one module that calls the Windows Data Protection API
// (`provider::dpapi_windows`). `forbid` cannot be relaxed for a single module, so:
// - everywhere but Windows, where that module is not compiled, the crate keeps `forbid`: the Linux
//   build proves that no other code has `unsafe`, not even behind an `allow`;
// - on Windows the crate `deny`s unsafe code and that module alone (declared in provider/mod.rs)
//   `allow`s it.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
// The crate documentation links to the items of the optional features; without them those
// links cannot resolve (and show as plain text).
#![cfg_attr(
    not(all(feature = "backup", feature = "settings")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "backup")]
mod backup;
mod base64;
mod envelope;
pub mod fs;
mod key;
mod provider;
#[cfg(feature = "settings")]
mod settings;
mod store;
mod stream;

#[cfg(feature = "backup")]
pub use backup::{
    Authentication, BackupEncryptionSettings, BackupError, BackupId, BackupInfo, BackupKind,
    Channel, Compression, DEFAULT_MAX_EXPANSION_RATIO, EncryptionMode, LogicalBackup,
    LogicalBackupWriter, MAX_DATABASE_NAME_LEN, MAX_KEY_COPIES, Manifest, MasterKeys,
    RestoreConfig, RestoreReport, SecretOperation, SnapshotBackup, VerifyConfig, VerifyReport,
    inspect, printable, restore, verify,
};
pub use envelope::{EnvelopeError, ProtectedKey, Scheme};
pub use key::{DataKey, Fingerprint, KEY_LEN, KeyError, KeyId, MasterKey};
pub use provider::{
    DpapiProvider, ExecProvider, FileProvider, MasterKeyProvider, Protection, ProviderError,
    SealContext, Sealer, UnixHomeFileProvider, default_provider,
};
/// The `secrecy` crate this crate's key types are built on, re-exported so that an engine reads
/// key bytes (`use strongbox::secrecy::ExposeSecret;`, then `key.expose_secret()`) and the
/// [`SecretString`](secrecy::SecretString)s of `to_base64` with the very version this crate
/// uses, without a `secrecy` of its own in its `Cargo.toml`.
pub use secrecy;
#[cfg(feature = "settings")]
pub use settings::{MasterKeySettings, MasterKeySource, SettingsError};
pub use store::{DatabaseKeyStore, KEY_FILE_NAME, PutOutcome, RotationReport, StoreError};
pub use stream::{
    Algorithm, BackupWriter, Extension, Header, RestoreReader, StreamConfig, StreamError, TAG_LEN,
};
