//! # strongbox
//!
//! Envelope-encrypted database keys and authenticated, streaming backup encryption for storage
//! engines.
//!
//! - [`DataKey`]: a 256-bit database key (or a user-provided backup key), zeroized on drop,
//!   never printed.
//! - [`MasterKey`]: the 256-bit key that protects data keys at rest.
// No `unsafe` anywhere, except in the one module that calls the Windows Data Protection API
// (src/provider/dpapi_windows.rs). `forbid` cannot be relaxed for a single module, so:
// - everywhere but Windows, where that module is not compiled, the crate keeps `forbid`: the Linux
//   build proves that no other code has `unsafe`, not even behind an `allow`;
// - on Windows the crate `deny`s unsafe code and that module alone, declared below, `allow`s it.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod key;
// Temporary wiring until the provider module exists (branch `keys`).
#[cfg(windows)]
#[allow(unsafe_code)]
#[path = "provider/dpapi_windows.rs"]
#[allow(dead_code)]
mod dpapi_windows;

pub use key::{DataKey, Fingerprint, KEY_LEN, KeyError, KeyId, MasterKey};
