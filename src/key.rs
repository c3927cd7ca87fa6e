//! Key types: the 256-bit [`DataKey`] (a database key or a user-provided backup key) and the
//! 256-bit [`MasterKey`] that protects data keys, with their public identifiers [`KeyId`] and
//! [`Fingerprint`].
//!
//! Key bytes live only in zeroize-on-drop heap boxes; neither type implements `Display`, `Clone`
//! or `Serialize`, and their `Debug` output shows only the public identifier.

use std::fmt;

use crate::base64;
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretString};
use zeroize::Zeroizing;

/// Length in bytes of every key in this crate (256 bits).
pub const KEY_LEN: usize = 32;

/// Why a key could not be generated or parsed.
///
/// No variant ever carries the input it rejected: a mistyped key is still mostly a key.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The input decoded to the wrong number of bytes.
    #[error(
        "a key must be exactly {expected} bytes (256 bits), but the input holds {actual} bytes"
    )]
    InvalidLength {
        /// The required length (32).
        expected: usize,
        /// The length that was found.
        actual: usize,
    },
    /// Base64 that decodes to the wrong number of bytes.
    #[error("the input is base64 of {actual} bytes; a key is 32 bytes (44 characters of base64)")]
    Base64Length {
        /// How many bytes it decodes to.
        actual: usize,
    },
    /// A data key in hexadecimal where base64 is expected.
    #[error(
        "the input is hexadecimal (64 digits, 32 bytes); a data key is written in base64 \
         (44 characters, as `strongbox key get` prints it)"
    )]
    HexNotBase64,
    /// The input is not valid standard base64.
    #[error("the key is not valid base64 (standard alphabet, with padding)")]
    InvalidBase64,
    /// The input is not valid hexadecimal.
    #[error("the key is not valid hexadecimal")]
    InvalidHex,
    /// The input is in none of the accepted encodings.
    #[error(
        "a key must be 32 raw bytes, 44 characters of base64 or 64 hexadecimal digits \
         (whitespace around them aside), but the input is {len} bytes long"
    )]
    UnrecognizedEncoding {
        /// Length of the rejected input in bytes.
        len: usize,
    },
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A [`KeyId`] or [`Fingerprint`] in text that is not exactly 32 lower-case hexadecimal
    /// digits.
    #[error(
        "an identifier must be exactly 32 lower-case hexadecimal digits (as strongbox prints \
         it), but the input is {len} bytes long"
    )]
    InvalidIdentifier {
        /// Length of the rejected input in bytes.
        len: usize,
    },
}

/// Fills `out` from the operating system's CSPRNG.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), KeyError> {
    SystemRandom::new().fill(out).map_err(|_| KeyError::Random)
}

/// An output length for `ring::hkdf`, which insists on a `KeyType`.
struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 (RFC 5869): extract with `salt` from `ikm`, then expand with the concatenation of
/// `info` into `out`. `out` may be at most 255 * 32 bytes long.
pub(crate) fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    prk.expand(info, OkmLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("HKDF-SHA256 output length is within 255 * 32 bytes");
}

/// A secret 256-bit key in a zeroize-on-drop box.
struct Secret32(SecretBox<[u8; KEY_LEN]>);

impl Secret32 {
    fn from_fn(
        fill: impl FnOnce(&mut [u8; KEY_LEN]) -> Result<(), KeyError>,
    ) -> Result<Self, KeyError> {
        let mut secret = SecretBox::new(Box::new([0u8; KEY_LEN]));
        fill(secret.expose_secret_mut())?;
        Ok(Secret32(secret))
    }

    fn generate() -> Result<Self, KeyError> {
        Self::from_fn(|k| fill_random(k))
    }

    fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != KEY_LEN {
            return Err(KeyError::InvalidLength {
                expected: KEY_LEN,
                actual: bytes.len(),
            });
        }
        Self::from_fn(|k| {
            k.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn from_base64(text: &str) -> Result<Self, KeyError> {
        let text = text.trim_ascii();
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::HexNotBase64);
        }
        // 32 bytes are 44 characters of padded base64; refuse anything longer before decoding so
        // that a huge input never allocates.
        if text.len() > 64 {
            return Err(KeyError::Base64Length {
                actual: text.len() * 3 / 4,
            });
        }
        let mut decoded = Zeroizing::new([0u8; 48]);
        let len = base64::decode(text.as_bytes(), &mut decoded[..])
            .map_err(|_| KeyError::InvalidBase64)?;
        if len != KEY_LEN {
            return Err(KeyError::Base64Length { actual: len });
        }
        Self::from_slice(&decoded[..len])
    }

    fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.as_bytes();
        if text.len() != 2 * KEY_LEN {
            return Err(KeyError::InvalidLength {
                expected: KEY_LEN,
                actual: text.len() / 2,
            });
        }
        Self::from_fn(|k| {
            for (byte, pair) in k.iter_mut().zip(text.chunks_exact(2)) {
                let hi = hex_digit(pair[0]).ok_or(KeyError::InvalidHex)?;
                let lo = hex_digit(pair[1]).ok_or(KeyError::InvalidHex)?;
                *byte = (hi << 4) | lo;
            }
            Ok(())
        })
    }

    /// Raw 32 bytes (exactly, never trimmed: a raw key may begin or end with a byte that reads
    /// as whitespace), or base64 / hex text with ASCII whitespace around it.
    fn from_encoded(input: &[u8]) -> Result<Self, KeyError> {
        if input.len() == KEY_LEN {
            return Self::from_slice(input);
        }
        let text = input.trim_ascii();
        match text.len() {
            44 => {
                Self::from_base64(std::str::from_utf8(text).map_err(|_| KeyError::InvalidBase64)?)
            }
            64 => Self::from_hex(std::str::from_utf8(text).map_err(|_| KeyError::InvalidHex)?),
            _ => Err(KeyError::UnrecognizedEncoding { len: input.len() }),
        }
    }

    fn to_base64(&self) -> SecretString {
        SecretString::from(base64::encode(self.0.expose_secret(), base64::STANDARD))
    }

    fn id(&self, label: &[u8]) -> [u8; 16] {
        let mut id = [0u8; 16];
        hkdf_sha256(&[], self.0.expose_secret(), &[label], &mut id);
        id
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// 32 lower-case hexadecimal digits as 16 bytes.
fn parse_lower_hex_16(text: &str) -> Result<[u8; 16], KeyError> {
    let invalid = KeyError::InvalidIdentifier { len: text.len() };
    let digit = |c: u8| match c {
        b'0'..=b'9' | b'a'..=b'f' => hex_digit(c),
        _ => None,
    };
    if text.len() != 32 {
        return Err(invalid);
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let (hi, lo) = digit(pair[0]).zip(digit(pair[1])).ok_or(invalid.clone())?;
        *byte = (hi << 4) | lo;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// HKDF `info` label of the [`KeyId`] derivation.
pub(crate) const KEY_ID_LABEL: &[u8] = b"strongbox/v1/key-id";
/// HKDF `info` label of the [`Fingerprint`] derivation.
pub(crate) const FINGERPRINT_LABEL: &[u8] = b"strongbox/v1/master-key-fingerprint";

macro_rules! public_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// Wraps 16 bytes read from a header or a key file.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The 16 bytes of the identifier.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            #[doc = concat!(
                "Parses the text form that `Display` prints: exactly 32 lower-case hexadecimal ",
                "digits, nothing around them. Upper-case digits, whitespace, a `0x` prefix or any ",
                "other length are refused with [`KeyError::InvalidIdentifier`], so that a ",
                "parsed identifier always prints back as the text it came from.\n\n",
                "```\n",
                "let id = strongbox::key::", stringify!($name), "::from_hex(\"00112233445566778899aabbccddeeff\")?;\n",
                "assert_eq!(id.to_string(), \"00112233445566778899aabbccddeeff\");\n",
                "assert!(strongbox::key::", stringify!($name), "::from_hex(\"00112233445566778899AABBCCDDEEFF\").is_err());\n",
                "# Ok::<(), strongbox::key::KeyError>(())\n",
                "```"
            )]
            pub fn from_hex(text: &str) -> Result<Self, KeyError> {
                parse_lower_hex_16(text).map(Self)
            }
        }

        impl fmt::Display for $name {
            /// Lower-case hexadecimal, 32 digits.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "("))?;
                write_hex(f, &self.0)?;
                write!(f, ")")
            }
        }
    };
}

public_id!(
    /// The public identifier of a [`DataKey`]: 16 bytes of HKDF-SHA256 of the key with the label
    /// `strongbox/v1/key-id` (see `docs/FORMAT.md`).
    ///
    /// It names a key in headers and error messages so that a wrong key is reported as such. It
    /// is safe to show: it reveals nothing usable to guess the key.
    KeyId
);

public_id!(
    /// The public identifier of a [`MasterKey`]: 16 bytes of HKDF-SHA256 of the key with the
    /// label `strongbox/v1/master-key-fingerprint` (see `docs/KEYBLOB.md`).
    ///
    /// Recorded in every protected key blob so that a wrong master key is reported as such. It is
    /// safe to show.
    Fingerprint
);

/// A 256-bit data key: the key of one database, or a key a user provides for a backup.
///
/// The bytes are zeroized when the key is dropped. `Debug` shows only the [`KeyId`]; there is no
/// `Display` and no `Clone` (use [`DataKey::try_clone`] where a second copy is really needed).
///
/// The raw bytes are read through the [`ExposeSecret`] trait of
/// the `secrecy` crate, which this crate re-exports as [`strongbox::secrecy`](crate::secrecy):
/// import the trait from there, and no `secrecy` of a matching version is needed in the
/// engine's `Cargo.toml`. The same trait reads the [`SecretString`] of
/// [`DataKey::to_base64`]. Every read of key bytes is thus an explicit, searchable
/// `expose_secret()` call.
///
/// ```
/// use strongbox::DataKey;
/// use strongbox::secrecy::ExposeSecret;
///
/// let key = DataKey::generate()?;
/// let bytes: &[u8; 32] = key.expose_secret();    // what the engine encrypts its data with
/// let pasted = key.to_base64();                  // what a user keeps for a restore
/// let again = DataKey::from_base64(pasted.expose_secret())?;
/// assert_eq!(again.expose_secret(), bytes);
/// assert!(!format!("{key:?}").contains(pasted.expose_secret()));
/// # Ok::<(), strongbox::key::KeyError>(())
/// ```
pub struct DataKey(Secret32);

impl DataKey {
    /// Generates a new random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        Secret32::generate().map(Self)
    }

    /// Imports a key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        Secret32::from_slice(bytes).map(Self)
    }

    /// Imports a key from standard, padded base64 (44 characters); ASCII whitespace around it
    /// (spaces, tabs, line ends) is ignored. A key in hexadecimal is refused as such. The error
    /// never echoes the input.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        Secret32::from_base64(text).map(Self)
    }

    /// Exports the key as standard, padded base64: the form users paste as a restore key.
    pub fn to_base64(&self) -> SecretString {
        self.0.to_base64()
    }

    /// The key's public identifier.
    pub fn id(&self) -> KeyId {
        KeyId(self.0.id(KEY_ID_LABEL))
    }

    /// A second copy of the key, for the rare owner that must hold two (it is also zeroized on
    /// drop).
    pub fn try_clone(&self) -> Result<Self, KeyError> {
        Self::from_bytes(self.expose_secret())
    }
}

impl ExposeSecret<[u8; KEY_LEN]> for DataKey {
    /// The raw key bytes, for the engine that encrypts its database with them.
    fn expose_secret(&self) -> &[u8; KEY_LEN] {
        self.0.0.expose_secret()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// A 256-bit master key, which protects data keys (see the `provider` and `envelope` modules).
///
/// Zeroized on drop; `Debug` shows only the [`Fingerprint`]; no `Display`, no `Clone`. The raw
/// bytes are read as a [`DataKey`]'s are, through the re-exported
/// [`strongbox::secrecy::ExposeSecret`](crate::secrecy::ExposeSecret).
///
/// ```
/// use strongbox::MasterKey;
/// use strongbox::secrecy::ExposeSecret;
///
/// let master = MasterKey::generate()?;
/// let again = MasterKey::from_bytes(master.expose_secret())?;
/// assert_eq!(again.fingerprint(), master.fingerprint());
/// # Ok::<(), strongbox::key::KeyError>(())
/// ```
pub struct MasterKey(Secret32);

impl MasterKey {
    /// Generates a new random master key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        Secret32::generate().map(Self)
    }

    /// Imports a master key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        Secret32::from_slice(bytes).map(Self)
    }

    /// Parses what a key program prints or a key file holds: exactly 32 bytes are the raw key
    /// (never trimmed: a raw key may end with a byte that reads as a space or a newline);
    /// anything else is standard base64 (44 characters) or hexadecimal (64 digits) with ASCII
    /// whitespace (spaces, tabs, line ends) around it ignored, as for a data key's base64. The
    /// error says the length, never the bytes.
    pub fn from_encoded(input: &[u8]) -> Result<Self, KeyError> {
        Secret32::from_encoded(input).map(Self)
    }

    /// Exports the key as standard, padded base64.
    pub fn to_base64(&self) -> SecretString {
        self.0.to_base64()
    }

    /// The key's public fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(self.0.id(FINGERPRINT_LABEL))
    }
}

impl ExposeSecret<[u8; KEY_LEN]> for MasterKey {
    /// The raw key bytes, for a master key kept elsewhere (a key-management service, a file
    /// written by the engine).
    fn expose_secret(&self) -> &[u8; KEY_LEN] {
        self.0.0.expose_secret()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn bytes() -> Vec<u8> {
        (0u8..32).collect()
    }

    #[test]
    fn base64_round_trip_and_whitespace() {
        let key = DataKey::from_base64(&format!("  {B64}\n")).unwrap();
        assert_eq!(key.expose_secret().as_slice(), bytes().as_slice());
        assert_eq!(key.to_base64().expose_secret(), B64);
    }

    #[test]
    fn bad_inputs_are_typed_and_do_not_echo() {
        assert_eq!(
            DataKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==").unwrap_err(),
            KeyError::Base64Length { actual: 31 }
        );
        let err = DataKey::from_base64("not*base64*at*all").unwrap_err();
        assert_eq!(err, KeyError::InvalidBase64);
        assert!(!err.to_string().contains("base64*at"));
        assert!(matches!(
            DataKey::from_base64(&"A".repeat(10_000)),
            Err(KeyError::Base64Length { .. })
        ));
        let hex: String = bytes().iter().map(|b| format!("{b:02x}")).collect();
        let err = DataKey::from_base64(&format!("{hex}\n")).unwrap_err();
        assert_eq!(err, KeyError::HexNotBase64);
        assert!(
            err.to_string()
                .contains("hexadecimal (64 digits, 32 bytes)"),
            "{err}"
        );
        assert!(!err.to_string().contains("48"), "{err}");
        assert!(matches!(
            DataKey::from_bytes(&[0; 33]),
            Err(KeyError::InvalidLength { actual: 33, .. })
        ));
    }

    #[test]
    fn master_key_encodings() {
        let raw = bytes();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let fp = MasterKey::from_encoded(&raw).unwrap().fingerprint();
        for input in [
            B64.to_string(),
            format!("{B64}\n"),
            format!("{B64}\r\n"),
            hex.clone(),
            format!("{}\n", hex.to_uppercase()),
        ] {
            assert_eq!(
                MasterKey::from_encoded(input.as_bytes())
                    .unwrap()
                    .fingerprint(),
                fp,
                "{input:?}"
            );
        }
        assert_eq!(
            MasterKey::from_encoded(&[7; 31]).unwrap_err(),
            KeyError::UnrecognizedEncoding { len: 31 }
        );
        assert_eq!(
            MasterKey::from_encoded(&[7; 33]).unwrap_err(),
            KeyError::UnrecognizedEncoding { len: 33 }
        );
        assert_eq!(
            MasterKey::from_encoded(format!("{}  ", &B64[..42]).as_bytes()).unwrap_err(),
            KeyError::UnrecognizedEncoding { len: 44 }
        );
        assert_eq!(
            MasterKey::from_encoded(&[b'z'; 64]).unwrap_err(),
            KeyError::InvalidHex
        );
        assert_eq!(
            MasterKey::from_encoded(&[b'*'; 44]).unwrap_err(),
            KeyError::InvalidBase64
        );
    }

    #[test]
    fn data_and_master_keys_accept_the_same_whitespace_and_raw_keys_are_never_trimmed() {
        let raw = bytes();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let fp = MasterKey::from_bytes(&raw).unwrap().fingerprint();
        let id = DataKey::from_bytes(&raw).unwrap().id();
        for (before, after) in [("", " "), (" \t", "\r\n"), ("\n", "  \n\n"), ("", "\t")] {
            let b64 = format!("{before}{B64}{after}");
            assert_eq!(DataKey::from_base64(&b64).unwrap().id(), id, "{b64:?}");
            for text in [b64, format!("{before}{hex}{after}")] {
                let key = MasterKey::from_encoded(text.as_bytes()).unwrap();
                assert_eq!(key.fingerprint(), fp, "{text:?}");
            }
        }
        // A raw key whose first and last bytes read as whitespace: exactly 32 bytes are raw.
        let mut spaced = [b'k'; 32];
        spaced[0] = b'\n';
        spaced[31] = b' ';
        let key = MasterKey::from_encoded(&spaced).unwrap();
        assert_eq!(key.expose_secret(), &spaced);
        // A raw key with a newline added is not trimmed back to a raw key.
        let mut line = spaced.to_vec();
        line.push(b'\n');
        assert_eq!(
            MasterKey::from_encoded(&line).unwrap_err(),
            KeyError::UnrecognizedEncoding { len: 33 }
        );
    }

    #[test]
    fn ids_are_stable_distinct_and_not_the_key() {
        let key = DataKey::from_bytes(&bytes()).unwrap();
        let master = MasterKey::from_bytes(&bytes()).unwrap();
        assert_eq!(key.id(), DataKey::from_bytes(&bytes()).unwrap().id());
        assert_ne!(key.id().as_bytes(), master.fingerprint().as_bytes());
        assert_ne!(key.id().as_bytes().as_slice(), &bytes()[..16]);
        assert_ne!(key.id(), DataKey::generate().unwrap().id());
        assert_eq!(key.id().to_string().len(), 32);
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let raw = [0xA5u8; 32];
        let key = DataKey::from_bytes(&raw).unwrap();
        let master = MasterKey::from_bytes(&raw).unwrap();
        let b64 = key.to_base64().expose_secret().to_string();
        for text in [
            format!("{key:?}"),
            format!("{key:#?}"),
            format!("{master:?}"),
        ] {
            assert!(!text.contains("a5a5"), "{text}");
            assert!(!text.contains("A5A5"), "{text}");
            assert!(!text.contains(&b64[..8]), "{text}");
            assert!(!text.contains("165"), "{text}"); // decimal byte values
        }
    }

    #[test]
    fn try_clone_is_the_same_key() {
        let key = DataKey::generate().unwrap();
        assert_eq!(
            key.try_clone().unwrap().expose_secret(),
            key.expose_secret()
        );
    }

    #[test]
    fn generated_keys_are_random() {
        let (a, b) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.expose_secret(), &[0; KEY_LEN]);
        let (m, n) = (
            MasterKey::generate().unwrap(),
            MasterKey::generate().unwrap(),
        );
        assert_ne!(m.expose_secret(), n.expose_secret());
        assert_ne!(m.fingerprint(), n.fingerprint());
    }

    #[test]
    fn overlong_base64_is_refused_by_its_length_before_decoding() {
        // Not base64 at all, but refused for its length: it is never decoded.
        assert_eq!(
            DataKey::from_base64(&"*".repeat(100)).unwrap_err(),
            KeyError::Base64Length { actual: 75 }
        );
        // 64 characters are still decoded (to 48 bytes), unless they are hexadecimal.
        assert_eq!(
            DataKey::from_base64(&"Q".repeat(64)).unwrap_err(),
            KeyError::Base64Length { actual: 48 }
        );
        assert_eq!(
            DataKey::from_base64(&"*".repeat(64)).unwrap_err(),
            KeyError::InvalidBase64
        );
    }

    #[test]
    fn debug_shows_the_public_identifier() {
        let key = DataKey::from_bytes(&bytes()).unwrap();
        let master = MasterKey::from_bytes(&bytes()).unwrap();
        let (id, fp) = (key.id(), master.fingerprint());
        assert_eq!(
            format!("{key:?}"),
            format!("DataKey {{ id: KeyId({id}), .. }}")
        );
        assert_eq!(
            format!("{master:?}"),
            format!("MasterKey {{ fingerprint: Fingerprint({fp}), .. }}")
        );
        assert_eq!(id.to_string(), hex_of(id.as_bytes()));
        assert_eq!(fp.to_string(), hex_of(fp.as_bytes()));
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hex_of_the_wrong_length_reports_the_decoded_length() {
        // `from_encoded` only passes 64 digits on; the length check is its own line of defence.
        assert_eq!(
            Secret32::from_hex("abcdef").err(),
            Some(KeyError::InvalidLength {
                expected: 32,
                actual: 3
            })
        );
    }
}
