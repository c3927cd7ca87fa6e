//! # strongbox
//!
//! Envelope-encrypted database keys and authenticated, streaming backup encryption for storage
//! engines.
//!
//! - [`DataKey`]: a 256-bit database key (or a user-provided backup key), zeroized on drop,
//!   never printed.
//! - [`MasterKey`]: the 256-bit key that protects data keys at rest.
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod backup;
mod key;

pub use backup::{
    BackupEncryptionSettings, BackupError, BackupId, BackupKind, Channel, Compression,
    EncryptionMode, MAX_DATABASE_NAME_LEN, Manifest, SecretOperation,
};
pub use key::{DataKey, Fingerprint, KEY_LEN, KeyError, KeyId, MasterKey};
