//! The DPAPI provider: Windows protects data keys for the current user.
//!
//! # The sealed secret
//!
//! [`DpapiProvider`] is a [`Sealer`] (scheme 2 of `docs/KEYBLOB.md`): the envelope hands it each
//! blob's fresh 32-byte wrapping secret, and it returns `entropy (32) ‖ n (u16, big-endian) ‖
//! DPAPI blob (n bytes, 1 ≤ n ≤ 4096)`, where the entropy is random and fresh per blob and the
//! DPAPI blob protects the secret with that entropy. [`split_sealed`] checks that layout on every
//! platform, so that a DPAPI key blob parses (and is refused as such) anywhere.
//!
//! # The Windows side
//!
//! Two functions in `src/keys/provider/dpapi_windows.rs`, the only module of the crate allowed
//! `unsafe`:
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
use super::{MasterKeyProvider, Protection, ProviderError, SealContext, Sealer, private};
use crate::key::{KEY_LEN, fill_random};
use crate::keys::envelope::Scheme;
use zeroize::Zeroizing;

/// Length of the per-blob entropy at the start of the sealed secret.
const ENTROPY_LEN: usize = 32;
/// Largest DPAPI blob accepted.
pub(crate) const MAX_BLOB_LEN: usize = 4096;

/// Protects data keys with the Windows Data Protection API for the current user (the default
/// master-key provider on Windows): a key protected this way can be unprotected only by the same
/// Windows user, on any machine where that user's profile roams, and not after an administrator
/// resets the user's password (export the keys first: see
/// [`DatabaseKeyStore::export_base64`](crate::keys::DatabaseKeyStore::export_base64)).
///
/// DPAPI never exposes a key, so blobs it protects carry no
/// [`Fingerprint`](crate::key::Fingerprint). On other platforms [`DpapiProvider::new`] fails with [`ProviderError::Unsupported`].
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

/// The sealed secret of scheme 2: `entropy ‖ n ‖ DPAPI blob`; `None` if the DPAPI blob is empty
/// or longer than [`MAX_BLOB_LEN`].
pub(crate) fn join_sealed(entropy: &[u8; ENTROPY_LEN], blob: &[u8]) -> Option<Vec<u8>> {
    if blob.is_empty() || blob.len() > MAX_BLOB_LEN {
        return None;
    }
    let len = u16::try_from(blob.len()).ok()?;
    Some([&entropy[..], &len.to_be_bytes(), blob].concat())
}

/// The entropy and the DPAPI blob of a scheme-2 sealed secret, or why its layout is wrong.
pub(crate) fn split_sealed(sealed: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let (entropy, rest) = sealed
        .split_first_chunk::<ENTROPY_LEN>()
        .ok_or("truncated sealed secret")?;
    Ok((&entropy[..], super::last_ciphertext(rest, MAX_BLOB_LEN)?))
}

impl MasterKeyProvider for DpapiProvider {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::Sealer(self))
    }
}

impl private::InCrate for DpapiProvider {}

/// DPAPI binds the secret to fresh random entropy rather than to the context: the envelope's
/// associated data binds the whole sealed secret (entropy, length, DPAPI blob) to the header.
impl Sealer for DpapiProvider {
    fn scheme(&self) -> Scheme {
        Scheme::Dpapi
    }

    fn seal(
        &self,
        secret: &[u8; KEY_LEN],
        _context: &SealContext<'_>,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut entropy = [0u8; ENTROPY_LEN];
        fill_random(&mut entropy).map_err(|_| ProviderError::Random)?;
        let blob = self.protect_secret(secret, &entropy)?;
        join_sealed(&entropy, &blob).ok_or(ProviderError::SealedLength {
            sealer: "DPAPI",
            len: blob.len(),
            max: MAX_BLOB_LEN,
        })
    }

    fn unseal(
        &self,
        sealed: &[u8],
        _context: &SealContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        // A malformed layout is what DPAPI itself answers to a damaged blob: invalid data.
        let (entropy, blob) = split_sealed(sealed).map_err(|_| ProviderError::Dpapi {
            operation: "unprotect",
            code: codes::ERROR_INVALID_DATA,
        })?;
        self.unprotect_secret(blob, entropy)
    }

    /// A DPAPI blob cannot say which Windows user protected it.
    fn recognizes(&self, _sealed: &[u8]) -> bool {
        true
    }
}

impl fmt::Debug for DpapiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DpapiProvider { scope: CurrentUser }")
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_BLOB_LEN, ProviderError, codes, join_sealed, split_sealed};

    #[test]
    fn the_sealed_secret_is_entropy_length_and_dpapi_blob() {
        let sealed = join_sealed(&[0xe1; 32], &[0xd0; 300]).unwrap();
        assert_eq!(sealed.len(), 32 + 2 + 300);
        assert_eq!(&sealed[32..34], &[0x01, 0x2c]);
        let (entropy, blob) = split_sealed(&sealed).unwrap();
        assert_eq!((entropy, blob), (&[0xe1; 32][..], &[0xd0; 300][..]));

        let largest = vec![0xd0; MAX_BLOB_LEN];
        assert!(split_sealed(&join_sealed(&[0; 32], &largest).unwrap()).is_ok());
        assert_eq!(join_sealed(&[0; 32], &[0xd0; MAX_BLOB_LEN + 1]), None);
        assert_eq!(join_sealed(&[0; 32], &[]), None);
        for bad in [&sealed[..33], &sealed[..sealed.len() - 1], &[0; 34][..]] {
            assert!(split_sealed(bad).is_err(), "{}", bad.len());
        }
        let too_long = [&[0; 32][..], &[0x10, 0x01], &[0; 4097]].concat();
        assert_eq!(
            split_sealed(&too_long),
            Err("the ciphertext length of the sealed secret is out of its scheme's range")
        );
        let err = ProviderError::SealedLength {
            sealer: "DPAPI",
            len: 5000,
            max: MAX_BLOB_LEN,
        };
        assert_eq!(
            err.to_string(),
            "DPAPI returned 5000 bytes; a key blob holds 1 to 4096 bytes of its output"
        );
    }

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
