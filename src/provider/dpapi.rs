//! The DPAPI provider: Windows protects data keys for the current user.
//!
//! # The Windows side
//!
//! Everything platform-independent (the blob layout, the per-blob secret and entropy, the
//! AES-256-GCM wrap that binds the blob header and the DPAPI blob) is in the `envelope` module.
//! The Windows side is two functions in `src/provider/dpapi_windows.rs`, the only module of the
//! crate allowed `unsafe`:
//!
//! - `protect(plaintext, entropy)`: `CryptProtectData`, current-user scope,
//!   `CRYPTPROTECT_UI_FORBIDDEN`, with `entropy` as the optional entropy;
//! - `unprotect(blob, entropy)`: `CryptUnprotectData` with the same entropy, returning the
//!   plaintext in a zeroize-on-drop vector.
//!
//! Both free every buffer the OS returns (`LocalFree`) on every path, wipe the OS's plaintext
//! buffer before freeing it, and report a refusal as [`ProviderError::Dpapi`] with the
//! `GetLastError` code. [`DpapiProvider::protect_secret`] and
//! [`DpapiProvider::unprotect_secret`] call them. Off Windows the type is uninhabited:
//! [`DpapiProvider::new`] returns [`ProviderError::Unsupported`] and no value of it can exist.

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

/// The Windows error codes that [`error_message`] explains, as `GetLastError` reports them
/// (`HRESULT`s as their bit pattern). Copies of the `windows-sys` constants, so that the messages
/// exist (and are tested) on every platform; a Windows test checks that they match.
pub(crate) mod codes {
    /// `ERROR_FILE_NOT_FOUND`.
    pub(crate) const ERROR_FILE_NOT_FOUND: u32 = 2;
    /// `ERROR_INVALID_DATA`: DPAPI's answer to another user's blob, a corrupt blob or the wrong
    /// entropy.
    pub(crate) const ERROR_INVALID_DATA: u32 = 13;
    /// `NTE_BAD_DATA`.
    pub(crate) const NTE_BAD_DATA: u32 = 0x8009_0005;
    /// `NTE_BAD_KEY_STATE`: "Key not valid for use in specified state", DPAPI's answer after an
    /// administrator reset the user's password.
    pub(crate) const NTE_BAD_KEY_STATE: u32 = 0x8009_000B;
    /// `NTE_BAD_KEYSET`.
    pub(crate) const NTE_BAD_KEYSET: u32 = 0x8009_0016;
}

/// The message of [`ProviderError::Dpapi`]: what the code means where that is known, and the
/// code itself as Windows tools show it (decimal for Win32 errors, hexadecimal for `HRESULT`s).
pub(crate) fn error_message(operation: &str, code: u32) -> String {
    let shown = if code & 0x8000_0000 != 0 {
        format!("error {code:#010X}")
    } else {
        format!("error {code}")
    };
    let reason = match (operation, code) {
        ("unprotect", codes::ERROR_INVALID_DATA | codes::NTE_BAD_DATA) => {
            "the key was protected by another user or the blob is corrupt"
        }
        ("unprotect", codes::NTE_BAD_KEY_STATE | codes::NTE_BAD_KEYSET) => {
            "this Windows user's DPAPI master key cannot open it, as after an administrator reset \
             the user's password; put back the key exported before the reset"
        }
        ("unprotect", codes::ERROR_FILE_NOT_FOUND) => {
            "this Windows user's DPAPI master key for it was not found (another user's key?)"
        }
        ("unprotect", _) => {
            return format!(
                "DPAPI refused to unprotect the key ({shown}); a DPAPI-protected key can only be \
                 unprotected by the same Windows user, and not after a password reset"
            );
        }
        _ => return format!("DPAPI refused to {operation} the key ({shown})"),
    };
    format!("DPAPI refused to {operation}: {reason} ({shown})")
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
    use super::{ProviderError, codes};

    #[test]
    fn dpapi_errors_say_what_the_code_means() {
        let message = |operation, code| ProviderError::Dpapi { operation, code }.to_string();
        assert_eq!(
            message("unprotect", codes::ERROR_INVALID_DATA),
            "DPAPI refused to unprotect: the key was protected by another user or the blob is \
             corrupt (error 13)"
        );
        assert_eq!(
            message("unprotect", codes::NTE_BAD_KEY_STATE),
            "DPAPI refused to unprotect: this Windows user's DPAPI master key cannot open it, as \
             after an administrator reset the user's password; put back the key exported before \
             the reset (error 0x8009000B)"
        );
        assert_eq!(
            message("protect", 5),
            "DPAPI refused to protect the key (error 5)"
        );
        assert_eq!(
            message("unprotect", 87),
            "DPAPI refused to unprotect the key (error 87); a DPAPI-protected key can only be \
             unprotected by the same Windows user, and not after a password reset"
        );
        assert!(message("unprotect", 0x8009_0005).ends_with("blob is corrupt (error 0x80090005)"));
        assert_eq!(
            message("unprotect", codes::ERROR_FILE_NOT_FOUND),
            "DPAPI refused to unprotect: this Windows user's DPAPI master key for it was not found \
             (another user's key?) (error 2)"
        );
        assert!(message("unprotect", codes::NTE_BAD_KEYSET).contains("administrator reset"));
    }

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
