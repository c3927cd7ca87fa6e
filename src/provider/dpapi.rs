//! The DPAPI provider: Windows protects data keys for the current user.
//!
//! # The Windows hook
//!
//! Everything platform-independent (the blob layout, the per-blob secret and entropy, the
//! AES-256-GCM wrap that binds the blob header) is in the `envelope` module. The Windows side is
//! two functions in `src/provider/dpapi_windows.rs`, declared in `provider/mod.rs` as
//! `#[cfg(windows)] #[allow(unsafe_code)] mod dpapi_windows;` (the only module allowed `unsafe`):
//!
//! ```text
//! /// CryptProtectData, current-user scope, CRYPTPROTECT_UI_FORBIDDEN, with `entropy` as the
//! /// optional entropy. Frees the OS buffer (LocalFree) on every path.
//! pub(super) fn protect(plaintext: &[u8], entropy: &[u8]) -> Result<Vec<u8>, ProviderError>;
//!
//! /// CryptUnprotectData with the same entropy; the plaintext copy is zeroized, the OS buffer
//! /// zeroized and freed on every path. Failure: `ProviderError::Dpapi { operation: "unprotect",
//! /// code: GetLastError() }`.
//! pub(super) fn unprotect(blob: &[u8], entropy: &[u8]) -> Result<Zeroizing<Vec<u8>>, ProviderError>;
//! ```
//!
//! `DpapiProvider::protect_secret` and `DpapiProvider::unprotect_secret` call them. Off
//! Windows the type is uninhabited: [`DpapiProvider::new`] returns
//! [`ProviderError::Unsupported`] and no value of it can exist.

use std::fmt;

#[cfg(windows)]
use super::dpapi_windows;
use super::{MasterKeyProvider, Protection, ProviderError};
use zeroize::Zeroizing;

/// Protects data keys with the Windows Data Protection API for the current user (the default
/// master-key provider on Windows): a key protected this way can be unprotected only by the same
/// Windows user, on any machine where that user's profile roams, and not after an administrator
/// resets the user's password (export the keys first: see
/// [`DatabaseKeyStore::export_base64`](crate::DatabaseKeyStore::export_base64)).
///
/// DPAPI never exposes a key, so blobs it protects carry no [`Fingerprint`](crate::Fingerprint).
/// On other platforms [`DpapiProvider::new`] fails with [`ProviderError::Unsupported`].
pub struct DpapiProvider {
    _platform: Platform,
}

/// Makes [`DpapiProvider`] constructible on Windows only.
#[cfg(windows)]
struct Platform;

/// Uninhabited: off Windows no `DpapiProvider` can exist.
#[cfg(not(windows))]
enum Platform {}

impl DpapiProvider {
    /// The DPAPI provider for the current Windows user; off Windows,
    /// [`ProviderError::Unsupported`].
    pub fn new() -> Result<Self, ProviderError> {
        #[cfg(windows)]
        {
            Ok(Self {
                _platform: Platform,
            })
        }
        #[cfg(not(windows))]
        {
            Err(ProviderError::Unsupported {
                provider: "DPAPI",
                platform: std::env::consts::OS,
            })
        }
    }

    /// Protects `plaintext` for the current user with `entropy` as DPAPI's optional entropy.
    pub(crate) fn protect_secret(
        &self,
        plaintext: &[u8],
        entropy: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        #[cfg(windows)]
        {
            dpapi_windows::protect(plaintext, entropy)
        }
        #[cfg(not(windows))]
        {
            let _ = (plaintext, entropy);
            match self._platform {}
        }
    }

    /// Unprotects a blob made by [`DpapiProvider::protect_secret`] with the same entropy.
    pub(crate) fn unprotect_secret(
        &self,
        blob: &[u8],
        entropy: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        #[cfg(windows)]
        {
            dpapi_windows::unprotect(blob, entropy)
        }
        #[cfg(not(windows))]
        {
            let _ = (blob, entropy);
            match self._platform {}
        }
    }
}

impl MasterKeyProvider for DpapiProvider {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::Dpapi(self))
    }
}

impl fmt::Debug for DpapiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DpapiProvider { scope: CurrentUser }")
    }
}

#[cfg(test)]
mod tests {
    #[cfg(not(windows))]
    #[test]
    fn unsupported_off_windows() {
        let err = super::DpapiProvider::new().unwrap_err();
        assert!(matches!(
            err,
            super::ProviderError::Unsupported {
                provider: "DPAPI",
                ..
            }
        ));
        assert!(
            err.to_string().contains("unsupported on this platform"),
            "{err}"
        );
    }
}
