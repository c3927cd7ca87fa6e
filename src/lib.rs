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
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod key;
mod stream;

pub use key::{DataKey, Fingerprint, KEY_LEN, KeyError, KeyId, MasterKey};
pub use stream::{
    Algorithm, BackupWriter, Extension, Header, RestoreReader, StreamConfig, StreamError, TAG_LEN,
};
