//! Protected data keys: the versioned key blob ([`ProtectedKey`]) specified in `docs/KEYBLOB.md`.
//!
//! One wrapping implementation serves every provider. The data key is sealed with AES-256-GCM
//! under a wrapping key derived for this blob alone (HKDF-SHA256 from a fresh random 256-bit salt
//! and the blob header), with every byte of the blob before the sealed key as associated data:
//! the header (magic, version, scheme, master-key fingerprint, key id) cannot be altered without
//! the blob failing to open. The HKDF input is the master key (scheme 1), or, for every other
//! scheme, a fresh random 256-bit secret that the provider's [`Sealer`] seals: the blob stores
//! the sealer's output as opaque bytes between the salt and the sealed key, and only the
//! sealer's scheme knows their layout.
//!
//! `LessSafeKey` is used here and nowhere else: each wrapping key seals exactly one message, so
//! the fixed all-zero nonce is never reused under a key.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use crate::key::{DataKey, Fingerprint, KEY_LEN, KeyError, KeyId, fill_random, hkdf_sha256};
use crate::keys::provider::{
    self, MasterKeyProvider, Protection, ProviderError, SealContext, Sealer,
};

/// The blob's magic bytes.
const MAGIC: &[u8; 8] = b"sbox-key";
/// The only version this crate reads and writes.
const VERSION: u8 = 1;
/// Length of the common header: magic, version, scheme, fingerprint, key id.
const HEADER_LEN: usize = 8 + 1 + 1 + 16 + 16;
/// Length of the HKDF salt.
const SALT_LEN: usize = 32;
/// Offset of a sealer's sealed secret (after the header and the salt).
const SEALED_SECRET_OFFSET: usize = HEADER_LEN + SALT_LEN;
/// Length of the sealed data key: ciphertext and GCM tag.
const SEALED_LEN: usize = KEY_LEN + 16;
/// Length of a scheme-1 blob, and of every blob without its sealed secret.
const MASTER_KEY_BLOB_LEN: usize = HEADER_LEN + SALT_LEN + SEALED_LEN;
/// HKDF `info` label of the wrapping key (followed by the 42-byte header).
const WRAP_LABEL: &[u8] = b"strongbox/v1/keyblob-wrap";

/// How a blob's data key is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// Scheme 1: wrapped under a 256-bit master key (Exec, File, UnixHomeFile providers).
    MasterKey,
    /// Scheme 2: wrapped under a random secret that Windows DPAPI protects for the current user
    /// ([`DpapiProvider`](crate::keys::DpapiProvider), a [`Sealer`]).
    Dpapi,
    /// Scheme 3: wrapped under a random secret that a Vault / OpenBao Transit key encrypts
    /// (`VaultTransitProvider`, a [`Sealer`]; the `vault-transit` feature).
    VaultTransit,
    /// Scheme 4: wrapped under a random secret that an AWS KMS key encrypts (`AwsKmsProvider`,
    /// a [`Sealer`]; the `aws-kms` feature).
    AwsKms,
}

impl Scheme {
    /// The scheme's byte in the blob header.
    pub const fn id(self) -> u8 {
        match self {
            Scheme::MasterKey => 1,
            Scheme::Dpapi => 2,
            Scheme::VaultTransit => 3,
            Scheme::AwsKms => 4,
        }
    }

    fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Scheme::MasterKey),
            2 => Some(Scheme::Dpapi),
            3 => Some(Scheme::VaultTransit),
            4 => Some(Scheme::AwsKms),
            _ => None,
        }
    }

    fn of(protection: &Protection<'_>) -> Self {
        match protection {
            Protection::MasterKey(_) => Scheme::MasterKey,
            Protection::Sealer(sealer) => sealer.scheme(),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::MasterKey => "master key",
            Scheme::Dpapi => "DPAPI",
            Scheme::VaultTransit => "Vault Transit",
            Scheme::AwsKms => "AWS KMS",
        })
    }
}

/// Why a key blob could not be parsed, made or opened.
///
/// Format errors say exactly what is wrong; a failed authentication is deliberately opaque
/// ([`EnvelopeError::Corrupt`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The bytes do not start with the key-blob magic.
    #[error("not a strongbox key blob (bad magic bytes)")]
    NotAKeyBlob,
    /// The blob's version is not one this crate reads.
    #[error("unsupported key blob version {version} (this version of strongbox reads version 1)")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The blob's protection scheme is unknown.
    #[error("unsupported key blob protection scheme {scheme}")]
    UnsupportedScheme {
        /// The scheme byte found.
        scheme: u8,
    },
    /// The blob is truncated, too long or otherwise malformed.
    #[error("malformed key blob: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// The blob is larger than any valid blob.
    #[error("the key blob is {len} bytes long, more than the {max} bytes a key blob may have")]
    TooLarge {
        /// Its length (or a lower bound of it).
        len: usize,
        /// [`ProtectedKey::MAX_LEN`].
        max: usize,
    },
    /// The blob was protected by another master key.
    #[error(
        "the key was protected by master key {blob}, but the master key provided is {provider}"
    )]
    WrongMasterKey {
        /// The fingerprint recorded in the blob.
        blob: Fingerprint,
        /// The fingerprint of the provider's key.
        provider: Fingerprint,
    },
    /// The blob was sealed by another key of the provider's sealer (another KMS key, say), as
    /// the sealed secret records it.
    #[error("the key was sealed by another {scheme} key than the provider's")]
    OtherSealerKey {
        /// The blob's (and the provider's) scheme.
        scheme: Scheme,
    },
    /// The blob was protected by another kind of protection than the provider's.
    #[error("the key was protected by {blob}, but the provider protects with {provider}")]
    SchemeMismatch {
        /// The blob's scheme.
        blob: Scheme,
        /// The provider's scheme.
        provider: Scheme,
    },
    /// The blob holds the key of another database.
    #[error("the key blob holds key {found}, but key {expected} was expected")]
    KeyIdMismatch {
        /// The key id asked for.
        expected: KeyId,
        /// The key id in the blob.
        found: KeyId,
    },
    /// Authentication failed: the blob is corrupt or was tampered with.
    #[error("the key blob is corrupt or was tampered with (authentication failed)")]
    Corrupt,
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl EnvelopeError {
    /// Whether the error says "this blob belongs to another master key or scheme" (so another
    /// provider may open it), as opposed to a failure or a bad blob.
    pub fn is_not_mine(&self) -> bool {
        matches!(
            self,
            EnvelopeError::WrongMasterKey { .. }
                | EnvelopeError::SchemeMismatch { .. }
                | EnvelopeError::OtherSealerKey { .. }
        )
    }
}

impl From<KeyError> for EnvelopeError {
    fn from(_: KeyError) -> Self {
        // The only key error on these paths is the random generator's.
        EnvelopeError::Random
    }
}

/// A data key protected by a [`MasterKeyProvider`]: self-contained bytes, safe to store
/// anywhere (a key file, a backup header).
///
/// Its key id, scheme and master-key fingerprint are readable without any key. The format is
/// specified in `docs/KEYBLOB.md`.
///
/// ```
/// use strongbox::{DataKey, ProtectedKey};
/// use strongbox::keys::{FileProvider, Scheme};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("master.key");
/// # std::fs::write(&path, [7u8; 32])?;
/// # #[cfg(unix)] { use std::os::unix::fs::PermissionsExt;
/// # std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?; }
/// let provider = FileProvider::new(&path);
/// let key = DataKey::generate()?;
///
/// let bytes = ProtectedKey::protect(&key, &provider)?.to_bytes();
/// let blob = ProtectedKey::from_bytes(&bytes)?;
/// assert_eq!(blob.key_id(), key.id());
/// assert_eq!(blob.scheme(), Scheme::MasterKey);
/// assert_eq!(blob.unprotect(&provider)?.id(), key.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ProtectedKey {
    bytes: Vec<u8>,
    scheme: Scheme,
    fingerprint: Option<Fingerprint>,
    key_id: KeyId,
}

impl ProtectedKey {
    /// The largest blob [`ProtectedKey::from_bytes`] accepts.
    pub const MAX_LEN: usize = 8192;

    /// Protects `key` with `provider` (a fresh random salt, and for a sealer a fresh secret, per
    /// blob).
    pub fn protect(key: &DataKey, provider: &dyn MasterKeyProvider) -> Result<Self, EnvelopeError> {
        let protection = provider.protection()?;
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let bytes = match protection {
            Protection::MasterKey(master) => {
                let header = header(
                    Scheme::MasterKey,
                    *master.fingerprint().as_bytes(),
                    key.id(),
                );
                seal(prefix(&header, &salt, &[]), master.expose_secret(), key)
            }
            Protection::Sealer(sealer) => {
                let header = header(sealer.scheme(), [0; 16], key.id());
                let mut secret = Zeroizing::new([0u8; KEY_LEN]);
                fill_random(&mut secret[..])?;
                let sealed = sealer.seal(&secret, &SealContext::new(key.id(), &header))?;
                seal(prefix(&header, &salt, &sealed), &secret[..], key)
            }
        };
        Self::from_bytes(&bytes)
    }

    /// Opens the blob with `provider`.
    ///
    /// Errors: [`EnvelopeError::SchemeMismatch`], [`EnvelopeError::WrongMasterKey`] (with
    /// both fingerprints) or [`EnvelopeError::OtherSealerKey`] when the blob is not the
    /// provider's; [`EnvelopeError::Corrupt`] when it is, but does not authenticate;
    /// [`EnvelopeError::Provider`] when the provider fails.
    pub fn unprotect(&self, provider: &dyn MasterKeyProvider) -> Result<DataKey, EnvelopeError> {
        let protection = self.protection_of(provider)?;
        let plain = match protection {
            Protection::MasterKey(master) => {
                let blob = self.fingerprint.ok_or(EnvelopeError::Corrupt)?;
                if blob != master.fingerprint() {
                    return Err(EnvelopeError::WrongMasterKey {
                        blob,
                        provider: master.fingerprint(),
                    });
                }
                open(&self.bytes, master.expose_secret(), self.salt())?
            }
            Protection::Sealer(sealer) => self.open_sealed(sealer)?,
        };
        let key = DataKey::from_bytes(&plain[..KEY_LEN]).map_err(|_| EnvelopeError::Corrupt)?;
        // The header is authenticated, so only a blob made by a holder of the master key can
        // name another key than the one it holds; refuse it all the same.
        if key.id() != self.key_id {
            return Err(EnvelopeError::Corrupt);
        }
        Ok(key)
    }

    /// How `provider` protects keys, if that is the blob's scheme.
    fn protection_of<'p>(
        &self,
        provider: &'p dyn MasterKeyProvider,
    ) -> Result<Protection<'p>, EnvelopeError> {
        let protection = provider.protection()?;
        let theirs = Scheme::of(&protection);
        if theirs != self.scheme {
            return Err(EnvelopeError::SchemeMismatch {
                blob: self.scheme,
                provider: theirs,
            });
        }
        Ok(protection)
    }

    /// Unseals the blob's secret with `sealer` (of the blob's scheme) and opens the sealed key.
    fn open_sealed(
        &self,
        sealer: &dyn Sealer,
    ) -> Result<Zeroizing<[u8; SEALED_LEN]>, EnvelopeError> {
        if !sealer.recognizes(self.sealed_secret()) {
            return Err(EnvelopeError::OtherSealerKey {
                scheme: self.scheme,
            });
        }
        let context = SealContext::new(self.key_id, &self.bytes[..HEADER_LEN]);
        let secret = sealer.unseal(self.sealed_secret(), &context)?;
        if secret.len() != KEY_LEN {
            return Err(EnvelopeError::Corrupt);
        }
        open(&self.bytes, &secret, self.salt())
    }

    /// Re-seals a sealer's blob under the newest version of the sealer's key, without the
    /// sealed secret leaving the service ([`Sealer::rewrap`], Vault Transit's `rewrap`), then
    /// unseals the new sealed secret once to bind it into a new blob (fresh salt, same data key
    /// and secret). `None` when the blob is already under the newest version, or `provider`
    /// hands out a master key (which has no versions).
    ///
    /// Errors as [`ProtectedKey::unprotect`]: the blob must be the provider's and authenticate.
    pub fn rewrap(&self, provider: &dyn MasterKeyProvider) -> Result<Option<Self>, EnvelopeError> {
        let protection = self.protection_of(provider)?;
        let Protection::Sealer(sealer) = protection else {
            return Ok(None);
        };
        if !sealer.recognizes(self.sealed_secret()) {
            return Err(EnvelopeError::OtherSealerKey {
                scheme: self.scheme,
            });
        }
        let header = &self.bytes[..HEADER_LEN];
        let context = SealContext::new(self.key_id, header);
        let Some(sealed) = sealer.rewrap(self.sealed_secret(), &context)? else {
            return Ok(None);
        };
        let secret = sealer.unseal(&sealed, &context)?;
        if secret.len() != KEY_LEN {
            return Err(EnvelopeError::Corrupt);
        }
        // The rewrapped secret must open this blob: the service re-sealed the same secret.
        let plain = open(&self.bytes, &secret, self.salt())?;
        let key = DataKey::from_bytes(&plain[..KEY_LEN]).map_err(|_| EnvelopeError::Corrupt)?;
        if key.id() != self.key_id {
            return Err(EnvelopeError::Corrupt);
        }
        let header: [u8; HEADER_LEN] = header.try_into().expect("42 bytes");
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let bytes = seal(prefix(&header, &salt, &sealed), &secret, &key);
        Self::from_bytes(&bytes).map(Some)
    }

    /// Like [`ProtectedKey::unprotect`], after checking (before any decryption) that the blob
    /// holds the key with id `expected`: [`EnvelopeError::KeyIdMismatch`] otherwise.
    pub fn unprotect_expecting(
        &self,
        provider: &dyn MasterKeyProvider,
        expected: KeyId,
    ) -> Result<DataKey, EnvelopeError> {
        if self.key_id != expected {
            return Err(EnvelopeError::KeyIdMismatch {
                expected,
                found: self.key_id,
            });
        }
        self.unprotect(provider)
    }

    /// Whether the blob was protected by `provider`'s kind of protection and by its key, judged
    /// without unsealing: from the header's fingerprint for a master key, from what the sealed
    /// secret records for a sealer ([`Sealer::recognizes`]). A DPAPI blob cannot say which
    /// Windows user protected it: `true` means only "DPAPI".
    pub fn is_protected_by(&self, provider: &dyn MasterKeyProvider) -> Result<bool, ProviderError> {
        Ok(match provider.protection()? {
            Protection::MasterKey(master) => self.fingerprint == Some(master.fingerprint()),
            Protection::Sealer(sealer) => {
                self.scheme == sealer.scheme() && sealer.recognizes(self.sealed_secret())
            }
        })
    }

    /// Parses a blob, checking its structure (not its authenticity, which needs the key).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let (scheme, fingerprint, key_id) = parse_header(bytes)?;
        let fingerprint = match scheme {
            Scheme::MasterKey => {
                if bytes.len() != MASTER_KEY_BLOB_LEN {
                    return Err(EnvelopeError::Malformed {
                        reason: "a master-key blob is exactly 122 bytes long",
                    });
                }
                Some(Fingerprint::from_bytes(fingerprint))
            }
            sealed => {
                check_sealed_blob(sealed, fingerprint, bytes)?;
                None
            }
        };
        Ok(Self {
            bytes: bytes.to_vec(),
            scheme,
            fingerprint,
            key_id,
        })
    }

    /// The blob's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A copy of the blob's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The blob's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The format version (1).
    pub fn version(&self) -> u8 {
        self.bytes[8]
    }

    /// How the key is protected.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The fingerprint of the master key that protected the key; `None` for a sealer's blob (DPAPI).
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.fingerprint
    }

    /// The id of the protected data key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    fn salt(&self) -> &[u8; SALT_LEN] {
        self.bytes[HEADER_LEN..][..SALT_LEN]
            .try_into()
            .expect("32 bytes")
    }

    /// The sealer's opaque bytes (empty for a master-key blob).
    fn sealed_secret(&self) -> &[u8] {
        &self.bytes[SEALED_SECRET_OFFSET..self.bytes.len() - SEALED_LEN]
    }
}

impl fmt::Debug for ProtectedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedKey")
            .field("version", &self.version())
            .field("scheme", &self.scheme)
            .field("fingerprint", &self.fingerprint)
            .field("key_id", &self.key_id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The magic, version, scheme, fingerprint and key id of a blob, checked in the order of
/// `docs/KEYBLOB.md` ("Reading", steps 1 to 3).
fn parse_header(bytes: &[u8]) -> Result<(Scheme, [u8; 16], KeyId), EnvelopeError> {
    if bytes.len() > ProtectedKey::MAX_LEN {
        return Err(EnvelopeError::TooLarge {
            len: bytes.len(),
            max: ProtectedKey::MAX_LEN,
        });
    }
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(EnvelopeError::NotAKeyBlob);
    }
    let truncated = EnvelopeError::Malformed {
        reason: "truncated header",
    };
    let version = *bytes.get(8).ok_or(truncated)?;
    if version != VERSION {
        return Err(EnvelopeError::UnsupportedVersion { version });
    }
    let scheme_id = *bytes.get(9).ok_or(EnvelopeError::Malformed {
        reason: "truncated header",
    })?;
    let scheme =
        Scheme::from_id(scheme_id).ok_or(EnvelopeError::UnsupportedScheme { scheme: scheme_id })?;
    if bytes.len() < HEADER_LEN {
        return Err(EnvelopeError::Malformed {
            reason: "truncated header",
        });
    }
    let fingerprint: [u8; 16] = bytes[10..26].try_into().expect("16 bytes");
    let key_id = KeyId::from_bytes(bytes[26..42].try_into().expect("16 bytes"));
    Ok((scheme, fingerprint, key_id))
}

/// Checks the structure of a sealer's blob: a zero fingerprint field, and a sealed secret with
/// the layout of its scheme.
fn check_sealed_blob(
    scheme: Scheme,
    fingerprint: [u8; 16],
    bytes: &[u8],
) -> Result<(), EnvelopeError> {
    if fingerprint != [0; 16] {
        return Err(EnvelopeError::Malformed {
            reason: "the fingerprint field of a sealed-secret blob must be zero",
        });
    }
    if bytes.len() <= MASTER_KEY_BLOB_LEN {
        return Err(EnvelopeError::Malformed {
            reason: "truncated blob (no sealed secret)",
        });
    }
    let sealed = &bytes[SEALED_SECRET_OFFSET..bytes.len() - SEALED_LEN];
    provider::check_sealed(scheme, sealed).map_err(|reason| EnvelopeError::Malformed { reason })
}

/// The 42-byte header: magic, version, scheme, fingerprint field, key id.
fn header(scheme: Scheme, fingerprint: [u8; 16], key_id: KeyId) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8] = VERSION;
    out[9] = scheme.id();
    out[10..26].copy_from_slice(&fingerprint);
    out[26..].copy_from_slice(key_id.as_bytes());
    out
}

/// Everything before the sealed key: header, salt and the sealer's sealed secret (if any).
fn prefix(header: &[u8; HEADER_LEN], salt: &[u8; SALT_LEN], sealed_secret: &[u8]) -> Vec<u8> {
    [&header[..], salt, sealed_secret].concat()
}

/// The AES-256-GCM key for one blob: HKDF-SHA256(salt, ikm, WRAP_LABEL ‖ header).
fn wrapping_key(ikm: &[u8], salt: &[u8; SALT_LEN], header: &[u8]) -> LessSafeKey {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    hkdf_sha256(salt, ikm, &[WRAP_LABEL, header], &mut okm[..]);
    // ring copies the key into its own (opaque) key schedule.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &okm[..]).expect("AES-256 takes 32 bytes"))
}

/// Appends the data key, sealed under the wrapping key derived from `ikm`, to `prefix`.
fn seal(mut prefix: Vec<u8>, ikm: &[u8], key: &DataKey) -> Vec<u8> {
    let salt: [u8; SALT_LEN] = prefix[HEADER_LEN..][..SALT_LEN]
        .try_into()
        .expect("the prefix holds the salt");
    let wrap = wrapping_key(ikm, &salt, &prefix[..HEADER_LEN]);
    let mut buf = Zeroizing::new(*key.expose_secret());
    let tag = wrap
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; NONCE_LEN]),
            Aad::from(&prefix[..]),
            &mut buf[..],
        )
        .expect("sealing 32 bytes cannot exceed GCM's limits");
    prefix.extend_from_slice(&buf[..]);
    prefix.extend_from_slice(tag.as_ref());
    prefix
}

/// Opens the sealed key at the end of `blob`.
fn open(
    blob: &[u8],
    ikm: &[u8],
    salt: &[u8; SALT_LEN],
) -> Result<Zeroizing<[u8; SEALED_LEN]>, EnvelopeError> {
    let (aad, sealed) = blob.split_at(blob.len() - SEALED_LEN);
    let wrap = wrapping_key(ikm, salt, &blob[..HEADER_LEN]);
    let mut buf = Zeroizing::new([0u8; SEALED_LEN]);
    buf.copy_from_slice(sealed);
    wrap.open_in_place(
        Nonce::assume_unique_for_key([0; NONCE_LEN]),
        Aad::from(aad),
        &mut buf[..],
    )
    .map_err(|_| EnvelopeError::Corrupt)?;
    Ok(buf)
}

#[cfg(test)]
mod tests;
