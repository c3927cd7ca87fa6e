//! # strongbox
//!
//! Envelope-encrypted database keys and authenticated, streaming backup encryption for storage
//! engines.
//!
//! The public modules are the table of contents, from the bottom layer up:
//!
//! - [`key`]: the key types everything else builds on: [`DataKey`], a 256-bit database key (or
//!   a user-provided backup key), zeroized on drop, never printed; [`MasterKey`], the 256-bit key
//!   that protects data keys at rest; their public identifiers [`KeyId`] and
//!   [`Fingerprint`](key::Fingerprint).
//! - [`stream`]: [`BackupWriter`] / [`RestoreReader`], the authenticated, streaming encryption
//!   of a backup of any size in constant memory, with random access on restore (format:
//!   `docs/FORMAT.md`).
//! - [`keys`]: key management. [`MasterKeyProvider`] is where the master key comes from
//!   ([`ExecProvider`](keys::ExecProvider), [`FileProvider`](keys::FileProvider),
//!   [`UnixHomeFileProvider`](keys::UnixHomeFileProvider), the Unix default, and
//!   [`DpapiProvider`](keys::DpapiProvider), the Windows default, `VaultTransitProvider`, a
//!   Vault / OpenBao Transit key that never leaves Vault, and `AwsKmsProvider`, an AWS KMS key
//!   that never leaves KMS), chosen in code or from a
//!   `settings.json` with [`MasterKeySettings`]; [`ProtectedKey`] is a data key protected by a
//!   provider, as self-contained, versioned bytes (`docs/KEYBLOB.md`); [`DatabaseKeyStore`] keeps
//!   one protected key file ([`KEY_FILE_NAME`](keys::KEY_FILE_NAME)) per database directory:
//!   create, load, offline get-key / put-key, master-key rotation.
//! - [`backup`]: database backups, to a file or to any `Write`, and restores ([`SnapshotBackup`],
//!   [`LogicalBackup`], [`backup::restore`], [`backup::verify`], [`backup::inspect`]), with a
//!   [`Progress`](backup::Progress) handle to watch and cancel them, RavenDB's encryption
//!   rules, an authenticated manifest, the key carried wrapped under the master keys, and a
//!   [`Channel`](backup::Channel) the engine must name for every operation (format and rules:
//!   `docs/BACKUP.md`).
//! - `object` (feature `object-store`): backups written to and read from object storage (S3
//!   and S3-compatible stores, Google Cloud Storage, Azure Blob Storage, local files) by URL:
//!   `ObjectUrl`, `ObjectWriter`, `ObjectReader`, `list` (`docs/OBJECT_STORE.md`).
//! - [`fs`]: the durable file operations the crate and its command-line tool share.
//!
//! The crate root re-exports the types an engine starts from; everything else is reached
//! through its module (for example `strongbox::keys::ExecProvider`,
//! `strongbox::stream::StreamError`).
//!
//! ## Cargo features
//!
//! Without default features (`default-features = false`) the crate is the keys, the providers
//! (set up in code), [`ProtectedKey`], [`DatabaseKeyStore`] and the backup stream, on ring,
//! zeroize, secrecy, thiserror and tempfile alone (and rustix on Unix, windows-sys on Windows).
//! - `backup`: the [`backup`] module (database backups: [`SnapshotBackup`], [`LogicalBackup`],
//!   [`backup::restore`], [`backup::verify`], [`backup::inspect`], and their JSON
//!   [`BackupEncryptionSettings`](backup::BackupEncryptionSettings) /
//!   [`RestoreConfig`](backup::RestoreConfig)); tar, zstd, serde, serde_json.
//! - `settings`: [`MasterKeySettings`], the provider chosen from an engine's `settings.json`;
//!   serde, serde_json, shell-words. A feature of its own, apart from `backup`, so that an engine
//!   can read its settings without the backup code.
//! - `vault-transit`: `keys::VaultTransitProvider`, master keys kept in Vault / OpenBao Transit
//!   (`docs/KEYBLOB.md`, scheme 3); ureq (rustls on ring), serde, serde_json.
//! - `aws-kms`: `keys::AwsKmsProvider`, master keys kept in AWS KMS (`docs/KEYBLOB.md`, scheme
//!   4); the AWS SDK for Rust (aws-config, aws-sdk-kms; rustls on ring) and a tokio runtime. Not
//!   in `cli`: the SDK triples the tool's build and moves to newer Rust releases than the
//!   crate's minimum (its newest versions need Rust 1.94; Cargo's resolver picks older ones on
//!   Rust 1.89). Build the tool with `--features aws-kms` to use it.
//! - `object-store`: the `object` module; `object_store` (S3, GCS, Azure; ring, not aws-lc-rs),
//!   reqwest with rustls on ring, and a multi-thread tokio runtime the module owns. Implies
//!   `backup` and `tokio`.
//! - `cli` (the one default): the `strongbox` tool; implies `backup`, `settings`,
//!   `vault-transit` and `object-store`.
//!
//! An engine's path, end to end: a master-key file created at installation and named in its
//! `settings.json`, a key per database, and a backup written to any [`Write`](std::io::Write)
//! (here memory, as for an upload):
//!
//! ```
//! # #[cfg(all(feature = "settings", feature = "backup"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::Write as _;
//! use std::sync::Arc;
//!
//! use strongbox::backup::{Channel, MasterKeys, RestoreConfig, restore};
//! use strongbox::keys::FileProvider;
//! use strongbox::secrecy::ExposeSecret as _;
//! use strongbox::{DatabaseKeyStore, LogicalBackup, MasterKeySettings};
//!
//! let dir = tempfile::tempdir()?; // the engine's own directories, in real life
//! let master = dir.path().join("master.key");
//! let db = dir.path().join("orders");
//! std::fs::create_dir(&db)?;
//!
//! // Once, at installation: a new master-key file (owner-only from its first byte, never
//! // replacing a file), named in the engine's settings.json.
//! FileProvider::create_new(&master)?;
//! let settings_json = format!(r#"{{"Security.MasterKey.Path": {:?}}}"#, master);
//!
//! // The engine's settings.json chooses the master key; nothing is read until first use.
//! let provider = MasterKeySettings::from_json_str(&settings_json)?.provider()?;
//! let store = DatabaseKeyStore::new(Arc::clone(&provider));
//! let key = store.create(&db)?;                       // <db>/secret.key.encrypted
//! let again = store.load_expecting(&db, key.id())?;   // on every open
//! assert_eq!(again.expose_secret(), key.expose_secret());
//!
//! // A logical backup of the engine's export, encrypted with the database's key, which travels
//! // in the backup wrapped under the master key.
//! let keys = MasterKeys::new(provider);
//! let mut upload = Vec::new();
//! let mut backup = LogicalBackup::full(&db).create_to(&mut upload, &keys, Channel::Authenticated)?;
//! backup.write_all(b"the engine's export")?;
//! backup.finish()?; // without it, every reader refuses the backup as truncated
//!
//! // Restored from a file: the export comes back authenticated.
//! let file = dir.path().join("orders.full");
//! std::fs::write(&file, &upload)?;
//! let report = restore(
//!     &RestoreConfig::new([&file], dir.path().join("restored")),
//!     &keys,
//!     Channel::Authenticated,
//! )?;
//! assert_eq!(std::fs::read(&report.exports[0])?, b"the engine's export");
//! # Ok(()) }
//! # #[cfg(not(all(feature = "settings", feature = "backup")))] fn main() {}
//! ```
// No `unsafe` anywhere, except in the one module that calls the Windows Data Protection API
// (`keys::provider::dpapi_windows`). `forbid` cannot be relaxed for a single module, so:
// - everywhere but Windows, where that module is not compiled, the crate keeps `forbid`: the Linux
//   build proves that no other code has `unsafe`, not even behind an `allow`;
// - on Windows the crate `deny`s unsafe code and that module alone (declared in
//   keys/provider/mod.rs) `allow`s it.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
// Functions stay short: at most 60 lines of code (clippy.toml), tests included.
#![warn(clippy::too_many_lines)]
// The crate documentation links to the items of the optional features; without them those
// links cannot resolve (and show as plain text).
#![cfg_attr(
    not(all(feature = "backup", feature = "settings")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "backup")]
pub mod backup;
mod base64;
pub mod fs;
pub mod key;
pub mod keys;
#[cfg(feature = "object-store")]
pub mod object;
pub mod stream;
#[cfg(test)]
mod test_hex;
#[cfg(test)]
#[path = "../tests/tree/mod.rs"]
#[allow(dead_code, reason = "without `backup` no test compares trees")]
mod test_tree;

#[cfg(feature = "backup")]
pub use backup::{LogicalBackup, SnapshotBackup};
pub use key::{DataKey, KeyId, MasterKey};
#[cfg(feature = "settings")]
pub use keys::MasterKeySettings;
pub use keys::{DatabaseKeyStore, MasterKeyProvider, ProtectedKey};
/// The `secrecy` crate this crate's key types are built on, re-exported so that an engine reads
/// key bytes (`use strongbox::secrecy::ExposeSecret;`, then `key.expose_secret()`) and the
/// [`SecretString`](secrecy::SecretString)s of `to_base64` with the very version this crate
/// uses, without a `secrecy` of its own in its `Cargo.toml`.
pub use secrecy;
pub use stream::{BackupWriter, RestoreReader, StreamConfig};
