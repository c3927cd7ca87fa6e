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
//!
//! The public surface is flat: every type is re-exported here at the crate root, and the modules
//! that define them are private.
#![cfg_attr(not(windows), forbid(unsafe_code))]
// On Windows, `provider::dpapi_windows` (the DPAPI FFI) is the one module allowed `unsafe`.
#![cfg_attr(windows, deny(unsafe_code))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod backup;
mod envelope;
mod key;
mod provider;
mod settings;
mod store;
mod stream;

pub use backup::{
    BackupEncryptionSettings, BackupError, BackupId, BackupInfo, BackupKind, Channel, Compression,
    EXT_MANIFEST, EXT_WRAPPED_KEYS, EncryptionMode, LogicalBackup, LogicalBackupWriter,
    MAX_DATABASE_NAME_LEN, MAX_KEY_COPIES, Manifest, MasterKeys, RestoreConfig, RestoreReport,
    SecretOperation, SnapshotBackup, inspect, restore,
};
pub use envelope::{EnvelopeError, ProtectedKey, Scheme};
pub use key::{DataKey, Fingerprint, KEY_LEN, KeyError, KeyId, MasterKey};
pub use provider::{
    DpapiProvider, ExecProvider, FileProvider, MasterKeyProvider, Protection, ProviderError,
    UnixHomeFileProvider, default_provider,
};
pub use settings::{MasterKeySettings, MasterKeySource, SettingsError};
pub use store::{DatabaseKeyStore, KEY_FILE_NAME, PutOutcome, RotationReport, StoreError};
pub use stream::{
    Algorithm, BackupWriter, Extension, Header, RestoreReader, StreamConfig, StreamError, TAG_LEN,
};
