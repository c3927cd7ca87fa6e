//! The Windows Data Protection API (DPAPI) calls behind the `Dpapi` master-key provider: the only
//! module of the crate with `unsafe` code, compiled on Windows only.
//!
//! [`protect`] and [`unprotect`] wrap `CryptProtectData` / `CryptUnprotectData` in the
//! current user's scope (no `CRYPTPROTECT_LOCAL_MACHINE`) with `CRYPTPROTECT_UI_FORBIDDEN`, so
//! that a service never blocks on a prompt. The caller's secondary entropy is passed as the
//! optional entropy blob: the same entropy is needed to unprotect.
//!
//! Memory rules, checked by review of every `unsafe` block below:
//! - every buffer the OS returns is owned by a [`LocalBuffer`] from the moment the call returns,
//!   so it is freed with `LocalFree` on every path, errors included;
//! - the plaintext that `CryptUnprotectData` returns is zeroized in the OS buffer before it is
//!   freed, and its one copy lives in a [`Zeroizing`] vector allocated at its exact size (so it
//!   is never reallocated, which would leave a copy behind).
//!
//! The lints below make the compiler hold every `unsafe` block to a `// SAFETY:` comment.
#![deny(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    unsafe_op_in_unsafe_fn
)]

use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_INVALID_PARAMETER, GetLastError, LocalFree};
use windows_sys::Win32::Security::Cryptography::{
    CRYPT_INTEGER_BLOB, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData, CryptUnprotectData,
};
use zeroize::{Zeroize, Zeroizing};

use super::ProviderError;

const PROTECT: &str = "protect";
const UNPROTECT: &str = "unprotect";

/// Protects `plaintext` for the current Windows user, bound to `entropy`.
///
/// The returned blob can be unprotected only by the same user, with the same `entropy`.
pub(crate) fn protect(plaintext: &[u8], entropy: &[u8]) -> Result<Vec<u8>, ProviderError> {
    Ok(call(Operation::Protect, plaintext, entropy)?
        .as_slice()
        .to_vec())
}

/// Unprotects a blob made by [`protect`] for the current Windows user with the same `entropy`.
pub(crate) fn unprotect(blob: &[u8], entropy: &[u8]) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    let out = call(Operation::Unprotect, blob, entropy)?;
    let plain = out.as_slice();
    let mut copy = Zeroizing::new(Vec::with_capacity(plain.len()));
    copy.extend_from_slice(plain);
    Ok(copy)
}

/// Which DPAPI call [`call`] makes.
#[derive(Clone, Copy)]
enum Operation {
    /// `CryptProtectData`: its output is a protected blob.
    Protect,
    /// `CryptUnprotectData`: its output is plaintext, wiped before it is freed.
    Unprotect,
}

/// Runs `operation` on `data` with `entropy` and returns the buffer the OS allocated for the
/// result.
fn call(operation: Operation, data: &[u8], entropy: &[u8]) -> Result<LocalBuffer, ProviderError> {
    let (name, wipe) = match operation {
        Operation::Protect => (PROTECT, Wipe::No),
        Operation::Unprotect => (UNPROTECT, Wipe::Yes),
    };
    let data_in = input_blob(data, name)?;
    let entropy_in = input_blob(entropy, name)?;
    let mut data_out = CRYPT_INTEGER_BLOB {
        cbData: 0,
        pbData: ptr::null_mut(),
    };
    let (input, entropy, output) = (&data_in, entropy_ptr(&entropy_in), &mut data_out);
    let (reserved, prompt, flags) = (ptr::null(), ptr::null(), CRYPTPROTECT_UI_FORBIDDEN);
    let ok = match operation {
        // SAFETY: `input` and `entropy` point to `cbData` readable bytes borrowed from slices that
        // outlive the call, and DPAPI only reads its inputs (the `*mut` in `pbData` is the C
        // struct's type, not a licence to write). The description, reserved and prompt arguments
        // are null, which the API allows. `output` is a valid, writable blob that receives a
        // `LocalAlloc` buffer we take ownership of right below.
        Operation::Protect => unsafe {
            CryptProtectData(input, ptr::null(), entropy, reserved, prompt, flags, output)
        },
        // SAFETY: as for `CryptProtectData`: the input blobs borrow live slices and are only
        // read; the description out-pointer is null, so the OS allocates no description string
        // for us to free; `output` receives a LocalAlloc buffer we take ownership of right below.
        Operation::Unprotect => unsafe {
            CryptUnprotectData(
                input,
                ptr::null_mut(),
                entropy,
                reserved,
                prompt,
                flags,
                output,
            )
        },
    };
    // Read the error before anything else can call into the OS and overwrite it.
    let code = if ok == 0 { last_error() } else { 0 };
    // SAFETY: `data_out` is exactly what the DPAPI call returned: null or a LocalAlloc buffer of
    // `cbData` bytes that nobody else owns or frees. `wipe` is `Yes` when it holds plaintext.
    let out = unsafe { LocalBuffer::take(data_out, wipe) };
    if ok == 0 {
        return Err(ProviderError::Dpapi {
            operation: name,
            code,
        });
    }
    Ok(out)
}

/// The calling thread's last OS error code.
fn last_error() -> u32 {
    // SAFETY: GetLastError has no preconditions; it reads a thread-local value.
    unsafe { GetLastError() }
}

/// A read-only input blob over `data`.
///
/// DPAPI lengths are 32-bit. The crate's inputs are at most a few KiB (a key blob is at most
/// `ProtectedKey::MAX_LEN` bytes), so a longer one cannot occur; it would be refused the way
/// Windows refuses a bad argument, with `ERROR_INVALID_PARAMETER`, rather than truncated.
fn input_blob(data: &[u8], operation: &'static str) -> Result<CRYPT_INTEGER_BLOB, ProviderError> {
    let len = u32::try_from(data.len()).map_err(|_| ProviderError::Dpapi {
        operation,
        code: ERROR_INVALID_PARAMETER,
    })?;
    Ok(CRYPT_INTEGER_BLOB {
        cbData: len,
        pbData: data.as_ptr().cast_mut(),
    })
}

/// The optional-entropy argument: null when there is no entropy, as the API documents.
fn entropy_ptr(entropy: &CRYPT_INTEGER_BLOB) -> *const CRYPT_INTEGER_BLOB {
    if entropy.cbData == 0 {
        ptr::null()
    } else {
        entropy
    }
}

/// Whether a [`LocalBuffer`] holds a secret to overwrite before it is freed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wipe {
    Yes,
    No,
}

/// Owns a buffer that DPAPI allocated with `LocalAlloc`; frees it with `LocalFree` on drop.
struct LocalBuffer {
    ptr: *mut u8,
    len: usize,
    wipe: Wipe,
}

impl LocalBuffer {
    /// Takes ownership of the buffer in `blob`.
    ///
    /// # Safety
    /// `blob.pbData` is null, or points to a `LocalAlloc` allocation of at least `blob.cbData`
    /// initialized bytes that nothing else frees or uses afterwards.
    unsafe fn take(blob: CRYPT_INTEGER_BLOB, wipe: Wipe) -> Self {
        LocalBuffer {
            ptr: blob.pbData,
            len: if blob.pbData.is_null() {
                0
            } else {
                blob.cbData as usize
            },
            wipe,
        }
    }

    fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: `take`'s contract: `ptr` is non-null here and valid for `len` initialized bytes,
        // owned by `self` (so not freed or mutated elsewhere while the borrow lives).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for LocalBuffer {
    fn drop(&mut self) {
        if self.ptr.is_null() {
            return;
        }
        if self.wipe == Wipe::Yes {
            // SAFETY: `take`'s contract: `ptr` is valid for `len` bytes, and `&mut self` means no
            // slice from `as_slice` is alive. Zeroize writes with volatile stores, not elided.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }.zeroize();
        }
        // SAFETY: `ptr` is a LocalAlloc allocation owned by `self` alone, freed exactly once (here).
        // LocalFree returns null on success; on failure there is nothing safe left to do but leak.
        unsafe { LocalFree(self.ptr.cast()) };
    }
}

#[cfg(test)]
mod tests {
    use windows_sys::Win32::Foundation::{
        ERROR_FILE_NOT_FOUND, ERROR_INVALID_DATA, NTE_BAD_DATA, NTE_BAD_KEY_STATE, NTE_BAD_KEYSET,
    };

    use super::super::dpapi::codes;
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// The OS error code of a refused unprotect; fails the test on anything else.
    fn unprotect_code(result: Result<Zeroizing<Vec<u8>>, ProviderError>) -> u32 {
        match result {
            Err(ProviderError::Dpapi {
                operation: "unprotect",
                code,
            }) => code,
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("DPAPI unprotected a blob it should have refused"),
        }
    }

    #[test]
    fn round_trip() {
        let blob = protect(KEY, b"entropy").unwrap();
        assert!(
            !blob.windows(KEY.len()).any(|w| w == KEY),
            "the blob must not contain the plaintext"
        );
        assert_eq!(unprotect(&blob, b"entropy").unwrap().as_slice(), KEY);
    }

    #[test]
    fn round_trip_without_entropy_and_with_empty_plaintext() {
        let blob = protect(KEY, b"").unwrap();
        assert_eq!(unprotect(&blob, b"").unwrap().as_slice(), KEY);
        let blob = protect(b"", b"entropy").unwrap();
        assert!(unprotect(&blob, b"entropy").unwrap().is_empty());
    }

    #[test]
    fn each_protection_is_fresh() {
        assert_ne!(protect(KEY, b"e").unwrap(), protect(KEY, b"e").unwrap());
    }

    #[test]
    fn other_entropy_is_refused_with_the_os_error_code() {
        let blob = protect(KEY, b"entropy").unwrap();
        for wrong in [&b"entropz"[..], b"", b"entropy\0"] {
            let err = unprotect(&blob, wrong).unwrap_err();
            assert_eq!(
                err.to_string(),
                "DPAPI refused to unprotect: the key was protected by another user or the blob \
                 is corrupt (error 13)"
            );
            assert_eq!(unprotect_code(Err(err)), ERROR_INVALID_DATA);
        }
        let blob = protect(KEY, b"").unwrap();
        assert_eq!(
            unprotect_code(unprotect(&blob, b"entropy")),
            ERROR_INVALID_DATA
        );
    }

    /// DPAPI authenticates the ciphertext, not every byte of its own header: Wine, for one, lets
    /// a flipped master-key GUID or description byte through (the key blob around it, which
    /// authenticates the whole DPAPI blob, does not). What DPAPI guarantees, and this test
    /// checks, is that a modified blob never yields a different plaintext, and that the
    /// encrypted tail (ciphertext and signature) is authenticated.
    #[test]
    fn a_flipped_byte_never_yields_other_plaintext() {
        let blob = protect(KEY, b"entropy").unwrap();
        let tail = blob.len() - KEY.len() - 20;
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            match unprotect(&bad, b"entropy") {
                Err(ProviderError::Dpapi {
                    operation: "unprotect",
                    code,
                }) => assert_ne!(code, 0, "byte {i}"),
                Err(other) => panic!("byte {i}: unexpected {other}"),
                Ok(plain) => {
                    assert!(
                        i < tail,
                        "byte {i} of the encrypted tail was not authenticated"
                    );
                    assert_eq!(plain.as_slice(), KEY, "byte {i} changed the plaintext");
                }
            }
        }
    }

    #[test]
    fn truncated_and_garbage_blobs_are_refused() {
        let blob = protect(KEY, b"entropy").unwrap();
        for bad in [
            &blob[..blob.len() - 1],
            &blob[..20],
            &[][..],
            &[0u8; 64][..],
        ] {
            assert_ne!(unprotect_code(unprotect(bad, b"entropy")), 0);
        }
    }

    /// The platform-independent message table uses its own copies of the Windows codes.
    #[test]
    fn code_table_matches_windows_sys() {
        assert_eq!(codes::ERROR_FILE_NOT_FOUND, ERROR_FILE_NOT_FOUND);
        assert_eq!(codes::ERROR_INVALID_DATA, ERROR_INVALID_DATA);
        assert_eq!(codes::NTE_BAD_DATA, NTE_BAD_DATA as u32);
        assert_eq!(codes::NTE_BAD_KEY_STATE, NTE_BAD_KEY_STATE as u32);
        assert_eq!(codes::NTE_BAD_KEYSET, NTE_BAD_KEYSET as u32);
    }
}
