//! Strict base64 (RFC 4648, section 4: the standard alphabet, padded) for key text.
//!
//! Decoding accepts only the canonical form: a length that is a multiple of 4, `=` only as the
//! padding at the end, and zero bits where the last character has bits beyond the data. Every
//! other input is refused. Each character is converted by arithmetic on its value, with no table
//! indexed by it and no branch on it, so that the time taken does not depend on the key's bytes
//! (the technique of the `base64ct` crate); only the length and the padding, which are public,
//! choose a branch.

/// The two characters that differ between base64 alphabets: the ones for the values 62 and 63.
#[derive(Clone, Copy)]
pub(crate) struct Alphabet {
    c62: u8,
    c63: u8,
}

/// The standard alphabet (RFC 4648, section 4): `A-Z a-z 0-9 + /`.
pub(crate) const STANDARD: Alphabet = Alphabet {
    c62: b'+',
    c63: b'/',
};

/// The URL and file name safe alphabet (RFC 4648, section 5): `A-Z a-z 0-9 - _`.
pub(crate) const URL_SAFE: Alphabet = Alphabet {
    c62: b'-',
    c63: b'_',
};

/// Input that is not canonical, padded base64 in the standard alphabet, or that decodes to more
/// bytes than the output has room for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidBase64;

/// `bytes` as padded base64 in `alphabet`. The string is allocated once at its final size, so
/// that no copy of a secret is left behind by a reallocation.
pub(crate) fn encode(bytes: &[u8], alphabet: Alphabet) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut block = [0u8; 3];
        block[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from(block[0]) << 16 | u32::from(block[1]) << 8 | u32::from(block[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            let c = if i <= chunk.len() {
                encode_6bits((n >> shift) as u8 & 0x3f, alphabet)
            } else {
                b'='
            };
            text.push(char::from(c));
        }
        block.fill(0);
    }
    text
}

/// Decodes canonical, padded, standard base64 into the start of `out`: the number of bytes
/// written. On error `out` may hold part of the input's bytes (callers give a zeroizing buffer).
pub(crate) fn decode(text: &[u8], out: &mut [u8]) -> Result<usize, InvalidBase64> {
    if !text.len().is_multiple_of(4) {
        return Err(InvalidBase64);
    }
    let padding = match text {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    let len = text.len() / 4 * 3 - padding;
    if len > out.len() {
        return Err(InvalidBase64);
    }
    let blocks = text.len() / 4;
    // Negative once any character is not in the alphabet; non-zero bits beyond the data.
    let mut invalid = 0i16;
    let mut trailing = 0i16;
    for (index, chunk) in text.chunks_exact(4).enumerate() {
        let mut values = [0i16; 4];
        for (i, (value, &c)) in values.iter_mut().zip(chunk).enumerate() {
            let is_padding = index + 1 == blocks && i >= 4 - padding;
            *value = if is_padding { 0 } else { decode_6bits(c) };
            invalid |= *value;
        }
        // Bits beyond the data in the last character before the padding must be zero.
        if index + 1 == blocks {
            trailing = match padding {
                2 => values[1] & 0x0f,
                1 => values[2] & 0x03,
                _ => 0,
            };
        }
        let n = values
            .iter()
            .fold(0u32, |n, &v| n << 6 | u32::from(v as u16 & 0x3f));
        let start = index * 3;
        let end = (start + 3).min(len);
        for (at, byte) in out[start..end].iter_mut().enumerate() {
            *byte = (n >> (16 - 8 * at)) as u8;
        }
        values.fill(0);
    }
    if invalid < 0 || trailing != 0 {
        return Err(InvalidBase64);
    }
    Ok(len)
}

/// The value (0 to 63) of the standard-alphabet character `c`, or -1 if it is not one.
fn decode_6bits(c: u8) -> i16 {
    let c = i16::from(c);
    // Each term is `mask & (value + 1 - c)`, the mask all ones exactly when `c` is in the range:
    // (low - c) and (c - high) are both negative (the sign bit survives the `&` and the shift).
    let mut value = -1;
    value += (((0x40 - c) & (c - 0x5b)) >> 8) & (c - 0x40); // 'A'..='Z' -> 0..=25
    value += (((0x60 - c) & (c - 0x7b)) >> 8) & (c - 0x46); // 'a'..='z' -> 26..=51
    value += (((0x2f - c) & (c - 0x3a)) >> 8) & (c + 5); // '0'..='9' -> 52..=61
    value += (((0x2a - c) & (c - 0x2c)) >> 8) & 63; // '+' -> 62
    value += (((0x2e - c) & (c - 0x30)) >> 8) & 64; // '/' -> 63
    value
}

/// The character of `alphabet` for the value `v` (0 to 63).
fn encode_6bits(v: u8, alphabet: Alphabet) -> u8 {
    let v = i16::from(v);
    // `(limit - v) >> 8` is all ones exactly when v > limit.
    let mut diff = i16::from(b'A');
    diff += ((25 - v) >> 8) & (i16::from(b'a') - 26 - i16::from(b'A'));
    diff += ((51 - v) >> 8) & (i16::from(b'0') - 52 - (i16::from(b'a') - 26));
    let c62 = i16::from(alphabet.c62) - 62;
    diff += ((61 - v) >> 8) & (c62 - (i16::from(b'0') - 52));
    diff += ((62 - v) >> 8) & (i16::from(alphabet.c63) - 63 - c62);
    (v + diff) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::base64::Engine as _;
    use ::base64::engine::general_purpose::{STANDARD as REF_STANDARD, URL_SAFE as REF_URL_SAFE};
    use proptest::prelude::*;

    fn decoded(text: &str) -> Result<Vec<u8>, InvalidBase64> {
        let mut out = vec![0u8; text.len()];
        let len = decode(text.as_bytes(), &mut out)?;
        out.truncate(len);
        Ok(out)
    }

    #[test]
    fn rfc4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, text) in vectors {
            assert_eq!(encode(plain.as_bytes(), STANDARD), text);
            assert_eq!(decoded(text).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn every_character_of_both_alphabets() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(encode(&all, STANDARD), REF_STANDARD.encode(&all));
        assert_eq!(encode(&all, URL_SAFE), REF_URL_SAFE.encode(&all));
        for c in 0..=255u8 {
            let expected = REF_STANDARD
                .decode([b'A', b'A', b'A', c])
                .map_err(|_| InvalidBase64);
            let mut out = [0u8; 3];
            let got = decode(&[b'A', b'A', b'A', c], &mut out).map(|len| out[..len].to_vec());
            assert_eq!(got, expected, "character {c:#04x}");
        }
    }

    #[test]
    fn non_canonical_and_misplaced_padding_are_refused() {
        for text in [
            "Zh==", "Zm9=", "Zg=", "Zg", "Z===", "====", "Zg==Zg==", "Z=g=", "Zm 9v",
        ] {
            assert_eq!(decoded(text), Err(InvalidBase64), "{text:?}");
        }
    }

    #[test]
    fn output_too_small_is_refused() {
        let mut out = [0u8; 2];
        assert_eq!(decode(b"Zm9v", &mut out), Err(InvalidBase64));
        assert_eq!(decode(b"Zm8=", &mut out), Ok(2));
        assert_eq!(&out, b"fo");
    }

    proptest! {
        #[test]
        fn encode_matches_the_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(encode(&bytes, STANDARD), REF_STANDARD.encode(&bytes));
            prop_assert_eq!(encode(&bytes, URL_SAFE), REF_URL_SAFE.encode(&bytes));
            prop_assert_eq!(decoded(&REF_STANDARD.encode(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn decode_matches_the_base64_crate(text in "[A-Za-z0-9+/=_*-]{0,24}") {
            let expected = REF_STANDARD.decode(&text).map_err(|_| InvalidBase64);
            prop_assert_eq!(decoded(&text), expected);
        }

        #[test]
        fn decode_of_padded_shapes_matches_the_base64_crate(
            body in "([A-Za-z0-9+/]{4}){0,3}",
            tail in "[A-Za-z0-9+/]{2}(==|[A-Za-z0-9+/]=)",
        ) {
            let text = format!("{body}{tail}");
            let expected = REF_STANDARD.decode(&text).map_err(|_| InvalidBase64);
            prop_assert_eq!(decoded(&text), expected);
        }
    }
}
