//! # strongbox
//!
//! Envelope-encrypted database keys and authenticated, streaming backup encryption for storage
//! engines.
//!
//! - [`DataKey`]: a 256-bit database key (or a user-provided backup key), zeroized on drop,
//!   never printed.
//! - [`MasterKey`]: the 256-bit key that protects data keys at rest.
//! - [`MasterKeyProvider`]: where the master key comes from: [`ExecProvider`],
//!   [`FileProvider`], [`UnixHomeFileProvider`] (the Unix default) and [`DpapiProvider`] (the
//!   Windows default), chosen in code or from a `settings.json` with [`MasterKeySettings`].
//!
//! The public surface is flat: every type is re-exported here at the crate root, and the modules
//! that define them are private.
// No `unsafe` anywhere, except in the one module that calls the Windows Data Protection API
// (`provider::dpapi_windows`). `forbid` cannot be relaxed for a single module, so:
// - everywhere but Windows, where that module is not compiled, the crate keeps `forbid`: the Linux
//   build proves that no other code has `unsafe`, not even behind an `allow`;
// - on Windows the crate `deny`s unsafe code and that module alone (declared in provider/mod.rs)
//   `allow`s it.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod envelope;
mod key;
mod provider;
mod settings;
mod store;

pub use envelope::{EnvelopeError, ProtectedKey, Scheme};
pub use key::{DataKey, Fingerprint, KEY_LEN, KeyError, KeyId, MasterKey};
pub use provider::{
    DpapiProvider, ExecProvider, FileProvider, MasterKeyProvider, Protection, ProviderError,
    UnixHomeFileProvider, default_provider,
};
pub use settings::{MasterKeySettings, MasterKeySource, SettingsError};
pub use store::{DatabaseKeyStore, KEY_FILE_NAME, PutOutcome, RotationReport, StoreError};
