//! The test vectors in `tests/vectors/` (they need a fixed salt, which only the crate can set),
//! and an independent decryptor written from `docs/FORMAT.md` alone that must agree with them.
//!
//! Each vector is `<name>.sbx` (the stream) and `<name>.txt` (`key:` in hex or `none`, and
//! `expect:` either `ok` with the plaintext in `<name>.plain`, or `error <what this library
//! reports>`). Regenerate with
//! `STRONGBOX_WRITE_VECTORS=1 cargo test --lib stream::tests::write_vectors -- --ignored`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;

use super::cursor::LOOKAHEAD;
use super::header::Header;
use super::*;
use crate::key::DataKey;
use crate::test_hex::{hex, unhex};

const S: usize = 4096;

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"))
}

fn key1() -> DataKey {
    DataKey::from_bytes(&(0u8..32).collect::<Vec<_>>()).unwrap()
}

fn key2() -> DataKey {
    DataKey::from_bytes(&(32u8..64).collect::<Vec<_>>()).unwrap()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// A failing vector made from a valid stream by one edit: name, description, edit, expected error.
type Tamper<'f> = (
    &'static str,
    &'static str,
    &'f dyn Fn(&mut Vec<u8>),
    &'static str,
);

/// Writes a stream with a fixed salt.
fn stream(
    key: Option<&DataKey>,
    algorithm: Algorithm,
    plain: &[u8],
    exts: Vec<Extension>,
    salt: u8,
) -> Vec<u8> {
    let config = StreamConfig::default().segment_size(S).unwrap();
    let mut w = BackupWriter::create(
        Vec::new(),
        key.map(|k| (k, algorithm)),
        &config,
        exts,
        [salt; 32],
    )
    .unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap()
}

struct Vector {
    name: &'static str,
    description: &'static str,
    key: Option<DataKey>,
    stream: Vec<u8>,
    /// The plaintext, or the error this library reports.
    expect: Result<Vec<u8>, &'static str>,
}

fn segment_range(backup: &[u8], i: usize) -> std::ops::Range<usize> {
    let hl = Header::read_from(&mut &backup[..]).unwrap().encoded_len();
    let start = hl + i * (S + TAG_LEN);
    start..(start + S + TAG_LEN).min(backup.len())
}

fn build_vectors() -> Vec<Vector> {
    let mut v = ok_vectors();
    let base = v[3].stream.clone(); // three segments, AES, key 1
    let tampered = tampered_vectors(&base);
    let others = other_fail_vectors(&v[4].stream, &v[6].stream, &v[1].stream);
    v.extend(
        tampered
            .into_iter()
            .chain(others)
            .map(|(name, description, key, stream, error)| Vector {
                name,
                description,
                key,
                stream,
                expect: Err(error),
            }),
    );
    v
}

/// A valid vector: name, description, keyed (key 1) or not, algorithm, plaintext, extensions.
type OkRow = (
    &'static str,
    &'static str,
    bool,
    Algorithm,
    Vec<u8>,
    Vec<Extension>,
);

/// The valid vectors, with salts 1, 2, ...
fn ok_vectors() -> Vec<Vector> {
    let exts = vec![
        Extension::new(1, b"wrapped-key".to_vec()),
        Extension::new(42, Vec::new()),
    ];
    let (aes, chacha) = (Algorithm::Aes256Gcm, Algorithm::ChaCha20Poly1305);
    #[rustfmt::skip]
    let rows: [OkRow; 7] = [
        ("ok_aes_empty", "AES-256-GCM, empty plaintext: one empty last segment", true, aes, Vec::new(), Vec::new()),
        ("ok_aes_one_byte", "AES-256-GCM, 1 byte", true, aes, pattern(1), Vec::new()),
        ("ok_aes_one_full_segment", "AES-256-GCM, exactly one segment (4096 bytes): a full-size last segment",
            true, aes, pattern(S), Vec::new()),
        ("ok_aes_three_segments_extensions",
            "AES-256-GCM, 2*4096+100 bytes, extensions 1 (\"wrapped-key\") and 42 (empty)",
            true, aes, pattern(2 * S + 100), exts),
        ("ok_aes_two_full_segments", "AES-256-GCM, 2*4096 bytes: a full-size last segment after a full one",
            true, aes, pattern(2 * S), Vec::new()),
        ("ok_chacha_two_segments", "ChaCha20-Poly1305, 4096+1 bytes", true, chacha, pattern(S + 1), Vec::new()),
        ("ok_none_two_segments", "unencrypted (integrity-only), 4096+500 bytes, extension 7 (\"manifest\")",
            false, aes, pattern(S + 500), vec![Extension::new(7, b"manifest".to_vec())]),
    ];
    (1..)
        .zip(rows)
        .map(|(salt, (name, description, keyed, alg, plain, exts))| {
            let key = keyed.then(key1);
            Vector {
                name,
                description,
                stream: stream(key.as_ref(), alg, &plain, exts, salt),
                key,
                expect: Ok(plain),
            }
        })
        .collect()
}

/// A failing vector: name, description, key, stream, expected error.
type FailVector = (
    &'static str,
    &'static str,
    Option<DataKey>,
    Vec<u8>,
    &'static str,
);

fn edit(src: &[u8], change: &dyn Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = src.to_vec();
    change(&mut b);
    b
}

fn swap_segments_0_and_1(b: &mut [u8]) {
    let (r0, r1) = (segment_range(b, 0), segment_range(b, 1));
    let s0 = b[r0.clone()].to_vec();
    b.copy_within(r1, r0.start);
    let r1 = segment_range(b, 1);
    b[r1].copy_from_slice(&s0);
}

fn repeat_segment_0(b: &mut Vec<u8>) {
    let r0 = segment_range(b, 0);
    let s0 = b[r0.clone()].to_vec();
    b.splice(r0.end..r0.end, s0);
}

/// Streams that differ from `base` (ok_aes_three_segments_extensions) by one edit.
fn tampered_vectors(base: &[u8]) -> Vec<FailVector> {
    let relabel = |b: &mut Vec<u8>| b[14..30].copy_from_slice(key2().id().as_bytes());
    #[rustfmt::skip]
    let tampered: [Tamper; 16] = [
        ("fail_header_salt_changed", "one salt byte changed", &|b| b[40] ^= 1, "HeaderAuthentication"),
        ("fail_header_extension_changed", "one byte of extension 1 changed", &|b| b[72] ^= 1, "HeaderAuthentication"),
        ("fail_algorithm_changed", "algorithm id 1 changed to 2", &|b| b[9] = 2, "HeaderAuthentication"),
        ("fail_segment_size_changed", "segment size 4096 changed to 8192",
            &|b| b[10..14].copy_from_slice(&8192u32.to_be_bytes()), "HeaderAuthentication"),
        ("fail_bad_magic", "first byte changed", &|b| b[0] = b'S', "NotStrongbox"),
        ("fail_version_2", "version 2", &|b| b[8] = 2, "UnsupportedVersion 2"),
        ("fail_algorithm_3", "algorithm id 3", &|b| b[9] = 3, "UnsupportedAlgorithm 3"),
        ("fail_segment_size_too_small", "segment size 4095",
            &|b| b[10..14].copy_from_slice(&4095u32.to_be_bytes()), "InvalidHeader"),
        ("fail_segment_1_changed", "one ciphertext byte of segment 1 changed",
            &|b| { let r = segment_range(b, 1); b[r.start + 100] ^= 0x40 }, "CorruptSegment 1"),
        ("fail_tag_changed", "last tag byte of segment 0 changed",
            &|b| { let r = segment_range(b, 0); b[r.end - 1] ^= 1 }, "CorruptSegment 0"),
        ("fail_segments_swapped", "segments 0 and 1 swapped", &|b| swap_segments_0_and_1(b), "CorruptSegment 0"),
        ("fail_segment_duplicated", "segment 0 repeated", &repeat_segment_0, "CorruptSegment 1"),
        ("fail_truncated_at_boundary", "last segment removed: segment 1 is not marked last",
            &|b| b.truncate(segment_range(b, 2).start), "Truncated"),
        ("fail_truncated_header_only", "no segment at all", &|b| b.truncate(segment_range(b, 0).start), "Truncated"),
        ("fail_truncated_one_byte", "last byte removed", &|b| { b.pop(); }, "Truncated"),
        ("fail_last_segment_changed", "one ciphertext byte of the last segment (2) changed",
            &|b| { let r = segment_range(b, 2); b[r.start + 10] ^= 0x08 }, "Truncated"),
    ];
    let mut v: Vec<FailVector> = vec![
        (
            "fail_wrong_key",
            "ok_aes_three_segments_extensions read with key 2",
            Some(key2()),
            base.to_vec(),
            "WrongKey",
        ),
        (
            "fail_key_id_relabelled",
            "key id replaced by key 2's id, read with key 2: the header MAC commits to key 1",
            Some(key2()),
            edit(base, &relabel),
            "HeaderAuthentication",
        ),
    ];
    v.extend(
        tampered
            .into_iter()
            .map(|(name, description, change, error)| {
                (name, description, Some(key1()), edit(base, change), error)
            }),
    );
    v
}

/// A full segment 0 followed by an empty segment 1 marked last.
fn empty_segment_after_full() -> Vec<u8> {
    let aes = Algorithm::Aes256Gcm;
    let (header, cipher) = Header::seal_new(Some((&key1(), aes)), S, Vec::new(), [8; 32]).unwrap();
    let mut b = header.as_bytes().to_vec();
    let mut seg = pattern(S);
    seg.resize(S + TAG_LEN, 0);
    cipher.seal(0, false, &mut seg);
    b.extend_from_slice(&seg);
    let mut empty = [0u8; TAG_LEN];
    cipher.seal(1, true, &mut empty);
    b.extend_from_slice(&empty);
    b
}

/// The failing vectors made from ok_aes_two_full_segments, ok_none_two_segments and
/// ok_aes_one_byte, or from scratch.
fn other_fail_vectors(full_last: &[u8], none: &[u8], one_byte: &[u8]) -> Vec<FailVector> {
    let change_segment_0 = |b: &mut Vec<u8>| {
        let r = segment_range(b, 0);
        b[r.start] ^= 1
    };
    #[rustfmt::skip]
    let v: Vec<FailVector> = vec![
        ("fail_trailing_data", "ok_aes_two_full_segments with one byte appended", Some(key1()),
            edit(full_last, &|b| b.push(0)), "TrailingData"),
        ("fail_empty_segment_after_full",
            "a full segment 0 followed by an empty segment 1 marked last: only an empty stream may \
             have an empty last segment",
            Some(key1()), empty_segment_after_full(), "Truncated"),
        ("fail_downgrade_to_unencrypted",
            "ok_none_two_segments read with a key: a reader with a key refuses algorithm 0",
            Some(key1()), none.to_vec(), "Unencrypted"),
        ("fail_encrypted_without_key", "ok_aes_one_byte read without a key", None,
            one_byte.to_vec(), "Encrypted"),
        ("fail_none_segment_changed", "unencrypted stream, one plaintext byte of segment 0 changed",
            None, edit(none, &change_segment_0), "CorruptSegment 0"),
        ("fail_none_header_changed", "unencrypted stream, one byte of extension 7 changed", None,
            edit(none, &|b| b[72] ^= 1), "HeaderAuthentication"),
    ];
    v
}

fn error_name(err: &StreamError) -> String {
    match err {
        StreamError::NotStrongbox => "NotStrongbox".into(),
        StreamError::UnsupportedVersion(v) => format!("UnsupportedVersion {v}"),
        StreamError::UnsupportedAlgorithm(a) => format!("UnsupportedAlgorithm {a}"),
        StreamError::InvalidHeader(_) => "InvalidHeader".into(),
        StreamError::HeaderAuthentication => "HeaderAuthentication".into(),
        StreamError::WrongKey { .. } => "WrongKey".into(),
        StreamError::CorruptSegment { index } => format!("CorruptSegment {index}"),
        StreamError::Truncated => "Truncated".into(),
        StreamError::TrailingData => "TrailingData".into(),
        StreamError::Unencrypted => "Unencrypted".into(),
        StreamError::Encrypted { .. } => "Encrypted".into(),
        other => format!("{other:?}"),
    }
}

/// Restores with this library; the plaintext or the error's name.
fn restore(key: Option<&DataKey>, stream: &[u8]) -> Result<Vec<u8>, String> {
    let mut input = stream;
    let header = Header::read_from(&mut input).map_err(|e| error_name(&e))?;
    let mut r = RestoreReader::from_header(input, header, key).map_err(|e| error_name(&e))?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .map_err(|e| StreamError::from_io(&e).map_or_else(|| e.to_string(), error_name))?;
    Ok(out)
}

/// Parses `<name>.txt`.
fn read_meta(name: &str) -> BTreeMap<String, String> {
    fs::read_to_string(dir().join(format!("{name}.txt")))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
#[ignore = "writes tests/vectors/; run with STRONGBOX_WRITE_VECTORS=1"]
fn write_vectors() {
    if std::env::var_os("STRONGBOX_WRITE_VECTORS").is_none() {
        return;
    }
    fs::create_dir_all(dir()).unwrap();
    for v in build_vectors() {
        let key = v.key.as_ref().map_or("none".into(), |k| {
            use secrecy::ExposeSecret;
            hex(k.expose_secret())
        });
        let expect = match &v.expect {
            Ok(plain) => {
                fs::write(dir().join(format!("{}.plain", v.name)), plain).unwrap();
                "ok".to_string()
            }
            Err(e) => format!("error {e}"),
        };
        let meta = format!(
            "description: {}\nkey: {key}\nexpect: {expect}\n",
            v.description
        );
        fs::write(dir().join(format!("{}.txt", v.name)), meta).unwrap();
        fs::write(dir().join(format!("{}.sbx", v.name)), &v.stream).unwrap();
    }
}

/// Checks a valid vector: both decryptors return its plaintext, and the writer reproduces it
/// exactly from its key, salt and parameters, with any number of threads.
fn check_ok_vector(
    name: &str,
    key: Option<&DataKey>,
    stream: &[u8],
    got: Result<Vec<u8>, String>,
    independent: Result<Vec<u8>, String>,
) {
    assert!(name.starts_with("ok_"), "{name}");
    let plain = fs::read(dir().join(format!("{name}.plain"))).unwrap();
    assert!(got.as_ref() == Ok(&plain), "{name}: {:?}", got.err());
    assert!(
        independent.as_ref() == Ok(&plain),
        "{name}: {independent:?}"
    );
    let header = Header::read_from(&mut &stream[..]).unwrap();
    let salt: [u8; 32] = stream[30..62].try_into().unwrap();
    let alg = header.algorithm();
    for threads in [1, 2, 3] {
        let config = StreamConfig::default()
            .segment_size(header.segment_size())
            .unwrap()
            .threads(NonZeroUsize::new(threads).unwrap());
        let mut w = BackupWriter::create(
            Vec::new(),
            key.map(|k| (k, alg.unwrap())),
            &config,
            header.extensions().to_vec(),
            salt,
        )
        .unwrap();
        w.write_all(&plain).unwrap();
        assert!(
            w.finish().unwrap() == stream,
            "{name}: writer output differs with {threads} threads"
        );
    }
}

/// The table-driven test over every file in `tests/vectors/`.
#[test]
fn vectors() {
    let names = crate::test_tree::names(&dir(), ".txt");
    assert!(names.len() >= 25, "{names:?}");
    assert!(names.iter().filter(|n| n.starts_with("fail_")).count() >= 15);

    for name in &names {
        let meta = read_meta(name);
        let stream = fs::read(dir().join(format!("{name}.sbx"))).unwrap();
        let key = match meta["key"].as_str() {
            "none" => None,
            text => Some(DataKey::from_bytes(&unhex(text)).unwrap()),
        };
        let got = restore(key.as_ref(), &stream);
        let independent = independent_decrypt(key.as_ref(), &stream);
        match meta["expect"].as_str() {
            "ok" => check_ok_vector(name, key.as_ref(), &stream, got, independent),
            expect => {
                assert!(name.starts_with("fail_"), "{name}");
                let expected = expect.strip_prefix("error ").unwrap();
                assert_eq!(
                    got.as_ref().map(|_| ()),
                    Err(&expected.to_string()),
                    "{name}"
                );
                assert!(
                    independent.is_err(),
                    "{name}: independent decryptor accepted it"
                );
            }
        }
    }
}

#[test]
fn vectors_on_disk_are_the_generated_ones() {
    for v in build_vectors() {
        let on_disk = fs::read(dir().join(format!("{}.sbx", v.name))).unwrap();
        assert!(on_disk == v.stream, "{} differs from its generator", v.name);
    }
}

/// A decryptor written from `docs/FORMAT.md` alone, with `ring` primitives and no code of this
/// module: it must accept exactly the valid vectors.
fn independent_decrypt(key: Option<&DataKey>, s: &[u8]) -> Result<Vec<u8>, String> {
    let (alg, seg, hl) = independent_header(s)?;
    let cipher = independent_cipher(alg, key, s, hl)?;
    independent_segments(&cipher, seg, &s[hl..])
}

/// The independent decryptor's segment opener.
enum IndependentCipher {
    Aead(Box<ring::aead::LessSafeKey>),
    Sha(Vec<u8>),
}

/// Checks the header's layout; returns the algorithm id, the segment size and the header length.
fn independent_header(s: &[u8]) -> Result<(u8, usize, usize), String> {
    let err = |m: &str| Err(m.to_string());
    if s.len() < 66 || s[..8] != *b"\x89SBX\r\n\x1a\n" {
        return err("magic");
    }
    if s[8] != 1 {
        return err("version");
    }
    let alg = s[9];
    let seg = u32::from_be_bytes(s[10..14].try_into().unwrap()) as usize;
    if !(4096..=16 << 20).contains(&seg) || alg > 2 {
        return err("params");
    }
    let ext_len = u32::from_be_bytes(s[62..66].try_into().unwrap()) as usize;
    if ext_len > 1 << 20 || s.len() < 66 + ext_len + 32 {
        return err("extension length");
    }
    let mut ext = &s[66..66 + ext_len];
    let mut last_kind = None;
    while !ext.is_empty() {
        if ext.len() < 6 {
            return err("ext entry");
        }
        let kind = u16::from_be_bytes([ext[0], ext[1]]);
        let len = u32::from_be_bytes(ext[2..6].try_into().unwrap()) as usize;
        if len > ext.len() - 6 || last_kind.is_some_and(|k| k >= kind) {
            return err("ext entry");
        }
        last_kind = Some(kind);
        ext = &ext[6 + len..];
    }
    Ok((alg, seg, 66 + ext_len + 32))
}

/// Authenticates the header (`s[..hl]`) and derives the segment opener.
fn independent_cipher(
    alg: u8,
    key: Option<&DataKey>,
    s: &[u8],
    hl: usize,
) -> Result<IndependentCipher, String> {
    use ring::{aead, digest, hkdf, hmac};
    use secrecy::ExposeSecret;
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let (key_id, salt) = (&s[14..30], &s[30..62]);
    let (body, mac) = (&s[..hl - 32], &s[hl - 32..hl]);
    match (alg, key) {
        (0, None) => {
            let mut d = digest::Context::new(&digest::SHA256);
            d.update(b"strongbox/v1/integrity-header");
            d.update(body);
            if key_id != [0; 16] || d.finish().as_ref() != mac {
                return Err("key id or header checksum".into());
            }
            Ok(IndependentCipher::Sha(salt.to_vec()))
        }
        (1 | 2, Some(key)) => {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(key.expose_secret());
            let expand = |info: &[&[u8]]| {
                let mut out = [0u8; 32];
                prk.expand(info, Len(32)).unwrap().fill(&mut out).unwrap();
                out
            };
            let k_mac = expand(&[b"strongbox/v1/header-mac"]);
            hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &k_mac), body, mac)
                .map_err(|_| "header MAC")?;
            let k_payload = expand(&[b"strongbox/v1/payload", &[alg]]);
            let algorithm = [&aead::AES_256_GCM, &aead::CHACHA20_POLY1305][alg as usize - 1];
            let unbound = aead::UnboundKey::new(algorithm, &k_payload).unwrap();
            Ok(IndependentCipher::Aead(Box::new(aead::LessSafeKey::new(
                unbound,
            ))))
        }
        _ => Err("key does not match encrypted-ness".into()),
    }
}

/// Opens the segments: every one but the last is exactly seg + 16 bytes; the last is
/// 17..=seg+16 bytes (16 only for segment 0 of an empty stream), and ends the input.
fn independent_segments(
    cipher: &IndependentCipher,
    seg: usize,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    use ring::{aead, digest};
    if payload.is_empty() {
        return Err("no segment".into());
    }
    let count = payload.len().div_ceil(seg + 16);
    let mut out = Vec::new();
    for (i, chunk) in payload.chunks(seg + 16).enumerate() {
        if chunk.len() < 16 || (i > 0 && chunk.len() == 16) {
            return Err("short segment".into());
        }
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        nonce[11] = (i + 1 == count) as u8;
        let mut buf = chunk.to_vec();
        let plain = match cipher {
            IndependentCipher::Aead(k) => {
                let nonce = aead::Nonce::assume_unique_for_key(nonce);
                k.open_in_place(nonce, aead::Aad::empty(), &mut buf)
                    .map_err(|_| "segment")?
            }
            IndependentCipher::Sha(salt) => {
                let (plain, tag) = buf.split_at(buf.len() - 16);
                let mut d = digest::Context::new(&digest::SHA256);
                for part in [&b"strongbox/v1/integrity-segment"[..], salt, &nonce, plain] {
                    d.update(part);
                }
                if &d.finish().as_ref()[..16] != tag {
                    return Err("segment".into());
                }
                plain
            }
        };
        out.extend_from_slice(plain);
    }
    Ok(out)
}

#[test]
fn a_segment_cipher_is_a_pure_function_of_its_inputs() {
    // What the later parallel pipeline relies on: sealing segment i needs only (key, i, last).
    let (_, cipher) = Header::seal_new(
        Some((&key1(), Algorithm::Aes256Gcm)),
        S,
        Vec::new(),
        [9; 32],
    )
    .unwrap();
    let sealed = |i, last| {
        let mut b = pattern(100);
        b.resize(100 + TAG_LEN, 0);
        cipher.seal(i, last, &mut b);
        b
    };
    assert_eq!(sealed(3, false), sealed(3, false));
    assert_ne!(sealed(3, false), sealed(4, false));
    assert_ne!(sealed(3, false), sealed(3, true));
}

/// Writes `plain` with a fixed salt in writes whose sizes cycle through `chunks`.
/// A writer of a stream under key 1 with AES-256-GCM, no extension and the salt `[9; 32]`.
fn writer(config: &StreamConfig) -> BackupWriter<Vec<u8>> {
    BackupWriter::create(
        Vec::new(),
        Some((&key1(), Algorithm::Aes256Gcm)),
        config,
        Vec::new(),
        [9; 32],
    )
    .unwrap()
}

fn stream_with(config: &StreamConfig, plain: &[u8], chunks: &[usize]) -> Vec<u8> {
    let mut w = writer(config);
    let mut rest = plain;
    for &c in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at(c.min(rest.len()));
        w.write_all(now).unwrap();
        rest = later;
    }
    w.finish().unwrap()
}

#[test]
fn any_number_of_threads_writes_the_same_bytes_and_reads_them_back() {
    // Long enough for the batches to reach their largest size (1 MiB per thread) and to end
    // inside one.
    let plain = pattern(9 << 20 | 12_345);
    for segment_size in [S, 64 << 10] {
        let one = StreamConfig::default().segment_size(segment_size).unwrap();
        let reference = stream_with(&one, &plain, &[usize::MAX]);
        for threads in [1, 2, 3, 4] {
            let n = NonZeroUsize::new(threads).unwrap();
            let config = one.clone().threads(n);
            for chunks in [&[usize::MAX][..], &[1, 4095, 100_000, 3_000_000]] {
                let got = stream_with(&config, &plain, chunks);
                assert!(got == reference, "{segment_size} {threads} {chunks:?}");
            }
            for read_size in [777, 1 << 20, 16 << 20] {
                let mut r = RestoreReader::new(&reference[..], &key1())
                    .unwrap()
                    .with_threads(n);
                let mut out = Vec::new();
                let mut buf = vec![0; read_size];
                loop {
                    match r.read(&mut buf).unwrap() {
                        0 => break,
                        k => out.extend_from_slice(&buf[..k]),
                    }
                }
                assert!(out == plain, "{segment_size} {threads} {read_size}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small contracts: each would let a changed line go unnoticed.

#[test]
fn stream_config_reports_what_was_selected() {
    let default = StreamConfig::default();
    assert_eq!(default.selected_algorithm(), Algorithm::Aes256Gcm);
    assert_eq!(default.selected_threads().get(), 1);
    assert_eq!(default.selected_segment_size(), 64 << 10);
    let config = StreamConfig::default()
        .algorithm(Algorithm::ChaCha20Poly1305)
        .threads(NonZeroUsize::new(3).unwrap())
        .segment_size(S)
        .unwrap();
    assert_eq!(config.selected_algorithm(), Algorithm::ChaCha20Poly1305);
    assert_eq!(config.selected_threads().get(), cores().min(3));
    let huge = config.clone().threads(NonZeroUsize::new(20_000).unwrap());
    assert_eq!(huge.selected_threads().get(), cores());
    assert_eq!(config.selected_segment_size(), S);
}

#[test]
fn debug_output_describes_the_stream_without_secrets() {
    let key = key1();
    let id = key.id();
    let exts = vec![Extension::new(7, b"seven".to_vec())];
    let backup = stream(Some(&key), Algorithm::ChaCha20Poly1305, b"data", exts, 9);
    let r = RestoreReader::new(&backup[..], &key).unwrap();
    let header = format!("{:?}", r.header());
    assert_eq!(
        header,
        format!(
            "Header {{ version: 1, algorithm: Some(ChaCha20Poly1305), segment_size: {S}, \
             key_id: Some(KeyId({id})), extensions: [(7, 5)], .. }}"
        )
    );
    // The reader's and the writer's own fields are theirs to change; they start with the header.
    let reader = format!("{r:?}");
    assert!(
        reader.starts_with("RestoreReader { header: Header {"),
        "{reader}"
    );
    let plain = stream(None, Algorithm::Aes256Gcm, b"data", Vec::new(), 9);
    let r = RestoreReader::unencrypted(&plain[..]).unwrap();
    assert!(
        format!("{:?}", r.header()).contains("algorithm: None, segment_size: 4096, key_id: None"),
        "{:?}",
        r.header()
    );
    let cipher = |key: Option<(&DataKey, Algorithm)>| {
        let (_, cipher) = Header::seal_new(key, S, Vec::new(), [9; 32]).unwrap();
        format!("{cipher:?}")
    };
    assert_eq!(
        cipher(Some((&key, Algorithm::Aes256Gcm))),
        "Aead(AES_256_GCM)"
    );
    assert_eq!(cipher(None), "Integrity");

    let mut w = BackupWriter::new(Vec::new(), &key).unwrap();
    w.write_all(b"abc").unwrap();
    let writer = format!("{w:?}");
    assert!(
        writer.starts_with("BackupWriter { header: Header {"),
        "{writer}"
    );
}

/// A reader of `input` under key 1 on `threads` threads.
fn threaded_reader<R: Read>(input: R, threads: usize) -> RestoreReader<R> {
    RestoreReader::new(input, &key1())
        .unwrap()
        .with_threads(NonZeroUsize::new(threads).unwrap())
}

/// The first error `r` returns, reading `buf`-sized pieces; panics (naming `what`) if the stream
/// reads as complete.
fn first_error(r: &mut impl Read, buf: &mut [u8], what: &str) -> std::io::Error {
    loop {
        match r.read(buf) {
            Ok(0) => panic!("{what}: the stream read as complete"),
            Ok(_) => {}
            Err(e) => return e,
        }
    }
}

/// The `read` of the test inputs below: copies at most `most` of the bytes of `data` after the
/// first `*read` into `buf` and counts them in `*read`.
fn serve(data: &[u8], read: &mut usize, buf: &mut [u8], most: usize) -> std::io::Result<usize> {
    let n = buf.len().min(most).min(data.len() - *read);
    buf[..n].copy_from_slice(&data[*read..*read + n]);
    *read += n;
    Ok(n)
}

/// Fails every other call with `Interrupted` (or with `error`, once `fail_at` bytes were read),
/// and returns at most 5 bytes per call.
struct Stutter<'a> {
    data: &'a [u8],
    read: usize,
    interrupt: bool,
    fail_at: Option<usize>,
}

impl<'a> Stutter<'a> {
    fn new(data: &'a [u8], fail_at: Option<usize>) -> Self {
        Stutter {
            data,
            read: 0,
            interrupt: true,
            fail_at,
        }
    }
}

impl Read for Stutter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.fail_at.is_some_and(|at| self.read >= at) {
            return Err(std::io::Error::other("the disk went away"));
        }
        self.interrupt = !self.interrupt;
        if !self.interrupt {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        serve(self.data, &mut self.read, buf, 5)
    }
}

#[test]
fn interrupted_reads_are_retried_and_other_errors_returned() {
    let plain = pattern(3 * S + 17);
    let exts = vec![Extension::new(1, b"one".to_vec())];
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, exts, 9);
    let mut r = RestoreReader::new(Stutter::new(&backup, None), &key1()).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert!(out == plain);

    // An error inside the header (the magic, the fixed part, the extensions) is the reader's.
    for at in [0, 3, 40, 70] {
        match RestoreReader::new(Stutter::new(&backup, Some(at)), &key1()) {
            Err(StreamError::Io(e)) => assert_eq!(e.to_string(), "the disk went away"),
            other => panic!("{at}: {other:?}"),
        }
    }
}

#[test]
fn a_header_cut_anywhere_is_truncated() {
    let exts = vec![Extension::new(1, b"one".to_vec())];
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, b"data", exts, 9);
    let header_len = Header::read_from(&mut &backup[..]).unwrap().encoded_len();
    for cut in 0..header_len {
        match Header::read_from(&mut &backup[..cut]) {
            Err(StreamError::Truncated) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn a_stream_error_is_repeated_by_every_later_read() {
    let plain = pattern(3 * S + 100);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    let mut corrupt = backup.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    // Data after a full-size last segment.
    let mut trailing = stream(
        Some(&key1()),
        Algorithm::Aes256Gcm,
        &plain[..3 * S],
        vec![],
        9,
    );
    trailing.push(0);
    for (input, expected) in [
        // Without its last segment (100 bytes and a tag), or cut inside it.
        (&backup[..backup.len() - 116], "Truncated"),
        (&backup[..backup.len() - 50], "Truncated"),
        (&corrupt[..], "Truncated"),
        (&trailing[..], "TrailingData"),
    ] {
        for threads in [1, 3] {
            for read_size in [100, 4 * S] {
                let mut r = threaded_reader(input, threads);
                let mut buf = vec![0; read_size];
                let first = first_error(&mut r, &mut buf, expected);
                for err in [
                    first,
                    r.read(&mut buf).unwrap_err(),
                    r.read(&mut buf).unwrap_err(),
                ] {
                    let err = StreamError::from_io(&err).expect("a stream error");
                    assert_eq!(
                        format!("{err:?}"),
                        expected,
                        "{threads} threads, {read_size}"
                    );
                }
            }
        }
    }
}

/// Returns `data`, failing once with an I/O error when exactly `fail_at` bytes have been read.
struct FailOnceAt<'a> {
    data: &'a [u8],
    read: usize,
    fail_at: Option<usize>,
}

impl Read for FailOnceAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut most = usize::MAX;
        if let Some(at) = self.fail_at {
            if self.read == at {
                self.fail_at = None;
                return Err(std::io::Error::other("a hiccup"));
            }
            most = at - self.read;
        }
        serve(self.data, &mut self.read, buf, most)
    }
}

/// Reads `backup` to the end with `read_size`-byte reads on `threads` threads, through an input
/// that fails once when `fail_at` bytes have been read; returns what was read and, for each read
/// that failed (with that failure), how many bytes had been read before it.
fn read_through_a_hiccup(
    backup: &[u8],
    fail_at: usize,
    threads: usize,
    read_size: usize,
) -> (Vec<u8>, Vec<usize>) {
    let input = FailOnceAt {
        data: backup,
        read: 0,
        fail_at: Some(fail_at),
    };
    let mut r = threaded_reader(input, threads);
    let mut buf = vec![0; read_size];
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, errors),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert_eq!(e.to_string(), "a hiccup");
                errors.push(out.len());
            }
        }
    }
}

#[test]
fn an_io_error_in_the_lookahead_of_a_direct_read_loses_nothing() {
    let plain = pattern(4 * S + 10);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    let header_len = Header::read_from(&mut &backup[..]).unwrap().encoded_len();
    let full = S + TAG_LEN;
    // Inside the lookahead after segment 0, and after segment 1 (then `fill` had a lookahead).
    for fail_at in [header_len + full + 5, header_len + 2 * full + 3] {
        // At least a full ciphertext segment: the reader decrypts in place in the caller's buffer.
        let (out, errors) = read_through_a_hiccup(&backup, fail_at, 1, 2 * S);
        assert_eq!(errors.len(), 1);
        assert!(out == plain, "{fail_at}");
    }
}

#[test]
fn an_io_error_anywhere_in_a_threaded_read_is_reported_where_one_thread_reports_it() {
    // Long enough for several runs of segments opened ahead for small reads.
    let plain = pattern(40 * S + 10);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    let header_len = Header::read_from(&mut &backup[..]).unwrap().encoded_len();
    let full = S + TAG_LEN;
    let mut positions: Vec<usize> = (header_len..backup.len()).step_by(997).collect();
    for i in (0..41).step_by(5) {
        let boundary = header_len + i * full;
        positions.extend([boundary, boundary + 1, boundary + S, boundary + S + 3]);
        positions.extend((boundary + full..boundary + full + 18).filter(|&p| p < backup.len()));
    }
    // Small reads (opened ahead), reads of two segments, and large ones (opened in place).
    for read_size in [100, 2 * S, 64 * S] {
        for &fail_at in positions.iter().filter(|&&p| p < backup.len()) {
            let (out, one_thread) = read_through_a_hiccup(&backup, fail_at, 1, read_size);
            assert!(
                out == plain && one_thread.len() == 1,
                "{read_size}, {fail_at}"
            );
            for threads in [2, 3] {
                let (out, errors) = read_through_a_hiccup(&backup, fail_at, threads, read_size);
                assert!(out == plain, "{threads} threads, {read_size}, {fail_at}");
                // Once, after the same plaintext: then the next read goes on.
                assert_eq!(
                    errors, one_thread,
                    "{threads} threads, {read_size}, {fail_at}"
                );
            }
        }
    }
}

#[test]
fn seeking_after_direct_reads_inside_a_larger_file() {
    use std::io::{Cursor, Seek, SeekFrom};
    let plain = pattern(5 * S + 10);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    let mut file = vec![0xEE; 1000];
    file.extend_from_slice(&backup);
    let mut cursor = Cursor::new(file);
    cursor.set_position(1000);
    let mut r = RestoreReader::new(cursor, &key1()).unwrap();
    let mut buf = vec![0; 2 * S];
    let mut got = Vec::new();
    for _ in 0..3 {
        let n = r.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.len() >= 3 * S && plain.starts_with(&got));
    // Where the stream starts in the file is worked out from what was read so far.
    assert_eq!(r.plaintext_len().unwrap(), plain.len() as u64);
    assert_eq!(r.seek(SeekFrom::Start(100)).unwrap(), 100);
    let mut part = vec![0; 50];
    r.read_exact(&mut part).unwrap();
    assert_eq!(part, plain[100..150]);
}

/// Shows the first `visible` bytes of `data`, then the rest once it has reported the end once
/// (a backup still being written, or a file restored in place underneath the reader).
struct Growing<'a> {
    data: &'a [u8],
    visible: usize,
    read: usize,
}

impl Read for Growing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read == self.visible {
            self.visible = self.data.len();
            return Ok(0);
        }
        serve(&self.data[..self.visible], &mut self.read, buf, usize::MAX)
    }
}

#[test]
fn truncation_is_permanent_even_if_the_input_grows() {
    let plain = pattern(3 * S + 100);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    // Without the last segment, and without the last three (reading on would find segment 1
    // where segment 0 failed as the last one).
    let cuts = [backup.len() - 116, backup.len() - 116 - 2 * (S + TAG_LEN)];
    let cases = [1, 2].into_iter().flat_map(|threads| {
        [100, 4 * S]
            .into_iter()
            .flat_map(move |read_size| cuts.map(|visible| (threads, read_size, visible)))
    });
    for (threads, read_size, visible) in cases {
        let input = Growing {
            data: &backup,
            visible,
            read: 0,
        };
        let mut r = threaded_reader(input, threads);
        let mut buf = vec![0; read_size];
        let err = first_error(&mut r, &mut buf, "growing input");
        for err in [err, r.read(&mut buf).unwrap_err()] {
            assert!(
                matches!(StreamError::from_io(&err), Some(StreamError::Truncated)),
                "{threads} threads, {read_size}, {visible}: {err}"
            );
        }
    }
}

#[test]
fn a_last_segment_cut_anywhere_is_truncated() {
    // After segment 2, 1 to TAG_LEN bytes cannot be a segment (no plaintext byte would be
    // left); more is the cut last segment.
    let plain = pattern(3 * S + 100);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    let end_of_2 = backup.len() - (100 + TAG_LEN);
    for keep in 1..=TAG_LEN {
        assert_eq!(
            restore(Some(&key1()), &backup[..end_of_2 + keep]).unwrap_err(),
            "Truncated",
            "{keep}"
        );
    }
    for keep in [TAG_LEN + 1, 50, 100 + TAG_LEN - 1] {
        assert_eq!(
            restore(Some(&key1()), &backup[..end_of_2 + keep]).unwrap_err(),
            "Truncated",
            "{keep}"
        );
    }
}

#[test]
fn a_seekable_stream_without_segments_is_truncated() {
    use std::io::Cursor;
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, b"data", Vec::new(), 9);
    let header_len = Header::read_from(&mut &backup[..]).unwrap().encoded_len();
    let mut r = RestoreReader::new(Cursor::new(&backup[..header_len]), &key1()).unwrap();
    assert!(matches!(r.plaintext_len(), Err(StreamError::Truncated)));
}

#[test]
fn plaintext_len_at_segment_boundaries_and_with_trailing_bytes() {
    use std::io::Cursor;
    for len in [1, S - 1, S, S + 1, 2 * S - 1, 2 * S, 3 * S - 1] {
        let plain = pattern(len);
        let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
        let mut r = RestoreReader::new(Cursor::new(&backup[..]), &key1()).unwrap();
        assert_eq!(r.plaintext_len().unwrap(), len as u64);
    }
    // A few bytes after a full last segment are trailing data, not a segment.
    let backup = stream(
        Some(&key1()),
        Algorithm::Aes256Gcm,
        &pattern(2 * S),
        vec![],
        9,
    );
    for extra in [1, 5, TAG_LEN] {
        let mut longer = backup.clone();
        longer.extend(std::iter::repeat_n(0, extra));
        let mut r = RestoreReader::new(Cursor::new(&longer[..]), &key1()).unwrap();
        assert!(
            matches!(r.plaintext_len(), Err(StreamError::TrailingData)),
            "{extra}"
        );
    }
}

#[test]
fn a_large_read_after_small_ones_goes_straight_into_its_buffer_again() {
    // Once the segments opened ahead for small reads are taken, a read of 64 segments or more
    // is served whole again (not one segment per call).
    let plain = pattern(300 * S);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    let mut r = RestoreReader::new(&backup[..], &key1())
        .unwrap()
        .with_threads(NonZeroUsize::new(2).unwrap());
    let mut out = vec![0u8; 1];
    r.read_exact(&mut out).unwrap();
    let mut big = vec![0u8; 128 * S];
    let mut sizes = Vec::new();
    while out.len() < 200 * S {
        let n = r.read(&mut big).unwrap();
        sizes.push(n);
        out.extend_from_slice(&big[..n]);
    }
    assert!(sizes.iter().any(|&n| n >= 64 * S), "{sizes:?}");
    assert!(sizes.len() < 20, "{sizes:?}");
    r.read_to_end(&mut out).unwrap();
    assert!(out == plain);
}

#[test]
fn small_reads_with_many_threads_open_little_ahead_of_a_short_stream() {
    // 100 bytes in 16 MiB segments, read 100 bytes at a time with 32 threads: one segment.
    let big = 16 << 20;
    let config = StreamConfig::default().segment_size(big).unwrap();
    let mut w = BackupWriter::with_config(Vec::new(), &key1(), &config, Vec::new()).unwrap();
    w.write_all(&pattern(100)).unwrap();
    let backup = w.finish().unwrap();
    let mut r = RestoreReader::new(&backup[..], &key1())
        .unwrap()
        .with_threads(NonZeroUsize::new(32).unwrap());
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, pattern(100));
    // 200 segments, 16 threads (capped at the cores): the first read opens one segment per
    // thread ahead, not all of them (and after a seek, the same again).
    let plain = pattern(200 * S);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, vec![], 9);
    let mut r = RestoreReader::new(std::io::Cursor::new(&backup[..]), &key1())
        .unwrap()
        .with_threads(NonZeroUsize::new(16).unwrap());
    let mut byte = [0u8; 1];
    r.read_exact(&mut byte).unwrap();
    assert_eq!(r.segments_opened_ahead(), cores().min(16) - 1);
    std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(100 * S as u64 + 7)).unwrap();
    // The segment sought into comes first, then small reads go ahead again.
    r.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], plain[100 * S + 7]);
    let mut rest = vec![0; S];
    r.read_exact(&mut rest).unwrap();
    assert_eq!(rest, plain[100 * S + 8..101 * S + 8]);
    assert!(
        r.segments_opened_ahead() <= 16,
        "{}",
        r.segments_opened_ahead()
    );
}

#[test]
fn flush_writes_every_segment_the_threads_hold() {
    // 10 full segments: the last one stays buffered (it may be the last), the 9 before it went
    // to the sealing threads; `flush` waits for them and writes them.
    let config = StreamConfig::default()
        .segment_size(S)
        .unwrap()
        .threads(NonZeroUsize::new(3).unwrap());
    let mut w = BackupWriter::with_config(Vec::new(), &key1(), &config, Vec::new()).unwrap();
    let header_len = w.header().encoded_len();
    w.write_all(&pattern(10 * S)).unwrap();
    w.flush().unwrap();
    assert_eq!(w.get_ref().len(), header_len + 9 * (S + TAG_LEN));
    let backup = w.finish().unwrap();
    assert_eq!(restore(Some(&key1()), &backup).unwrap(), pattern(10 * S));
}

#[test]
fn flush_flushes_the_inner_writer() {
    let inner = std::io::BufWriter::with_capacity(1 << 20, Vec::new());
    let mut w = BackupWriter::new(inner, &key1()).unwrap();
    w.write_all(&pattern(3 * (64 << 10))).unwrap();
    assert!(!w.get_ref().buffer().is_empty());
    w.flush().unwrap();
    assert!(w.get_ref().buffer().is_empty());
    assert!(!w.get_ref().get_ref().is_empty());
}

/// Gives at most `most` bytes per `read`.
struct Trickle<'a> {
    data: &'a [u8],
    most: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.most).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn copy_from_writes_the_bytes_that_write_does() {
    let lens = [
        0,
        1,
        S - 1,
        S,
        S + 1,
        S + 16,
        S + 17,
        3 * S,
        3 * S + 17,
        300 * S + 5,
    ];
    for len in lens {
        let plain = pattern(len);
        let one = StreamConfig::default().segment_size(S).unwrap();
        let reference = stream_with(&one, &plain, &[usize::MAX]);
        for threads in [1, 2, 3] {
            let config = one.clone().threads(NonZeroUsize::new(threads).unwrap());
            for most in [1, 7, S, S + 16, S + 17, usize::MAX] {
                let mut w = writer(&config);
                // A write before and after, to start and end mid-segment.
                w.write_all(&plain[..len.min(100)]).unwrap();
                let rest = &plain[len.min(100)..];
                let mut input = Trickle { data: rest, most };
                assert_eq!(w.copy_from(&mut input).unwrap(), rest.len() as u64);
                assert_eq!(w.copy_from(&mut input).unwrap(), 0);
                assert!(
                    w.finish().unwrap() == reference,
                    "{len} bytes, {threads} threads, reads of {most}"
                );
            }
        }
    }
}

/// Gives `data`, 1000 bytes per `read`, each after an `Interrupted` one.
struct Interrupting<'a> {
    data: &'a [u8],
    interrupt: bool,
}

impl Read for Interrupting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(1000).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn copy_from_retries_an_interrupted_read() {
    let plain = pattern(3 * S + 5);
    let config = StreamConfig::default().segment_size(S).unwrap();
    let reference = stream_with(&config, &plain, &[usize::MAX]);
    let mut w = writer(&config);
    let mut input = Interrupting {
        data: &plain,
        interrupt: false,
    };
    assert_eq!(w.copy_from(&mut input).unwrap(), plain.len() as u64);
    assert!(w.finish().unwrap() == reference);
}

/// Gives `data` (at most 1000 bytes per `read`), then fails.
struct ThenFail<'a>(&'a [u8]);

impl Read for ThenFail<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("the disk went away"));
        }
        let n = buf.len().min(1000).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn copy_from_returns_a_failed_read_and_can_go_on() {
    let plain = pattern(5 * S + 3);
    for threads in [1, 2] {
        let config = StreamConfig::default()
            .segment_size(S)
            .unwrap()
            .threads(NonZeroUsize::new(threads).unwrap());
        let reference = stream_with(&config, &plain, &[usize::MAX]);
        let mut w = writer(&config);
        let err = w.copy_from(&mut ThenFail(&plain[..2 * S + 9])).unwrap_err();
        assert_eq!(err.to_string(), "the disk went away");
        // Nothing read is lost: the stream goes on from the next byte.
        w.copy_from(&mut &plain[2 * S + 9..]).unwrap();
        assert!(w.finish().unwrap() == reference, "{threads} threads");
    }
}

/// Fails its `fail`-th `write` (counting from 0), takes at most 1000 bytes per `write`.
struct FailingSink {
    got: Vec<u8>,
    writes: usize,
    fail: usize,
}

impl Write for FailingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes += 1;
        if self.writes - 1 == self.fail {
            return Err(std::io::Error::other("the disk is full"));
        }
        let n = buf.len().min(1000);
        self.got.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `read` returns from `backup` with `threads` threads, and the error it stops at.
fn read_until_error(backup: &[u8], threads: usize) -> (Vec<u8>, Option<String>) {
    let mut r = threaded_reader(backup, threads);
    let mut out = Vec::new();
    let mut buf = vec![0; 3000];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(err) => return (out, Some(err.to_string())),
        }
    }
}

#[test]
fn copy_to_writes_what_read_returns_and_stops_where_it_does() {
    let plain = pattern(40 * S + 77);
    let config = StreamConfig::default().segment_size(S).unwrap();
    let good = stream_with(&config, &plain, &[usize::MAX]);
    let start = good.len() - plain.len() - 41 * TAG_LEN;
    let mut corrupt = good.clone();
    corrupt[start + 7 * (S + TAG_LEN) + 5] ^= 1;
    let truncated = &good[..good.len() - 100];
    let trailing = [&good[..], b"x"].concat();
    for backup in [&good[..], &corrupt, truncated, &trailing] {
        for threads in [1, 2, 3] {
            let expected = read_until_error(backup, threads);
            let mut r = threaded_reader(backup, threads);
            let mut out = Vec::new();
            let got = r.copy_to(&mut out).map_err(|err| err.to_string());
            assert!(out == expected.0, "{threads} threads");
            assert_eq!(got.err(), expected.1);
            if expected.1.is_none() {
                assert!(out == plain);
            }
        }
    }
}

#[test]
fn copy_to_returns_a_failed_write_and_can_go_on() {
    let plain = pattern(9 * S + 5);
    let config = StreamConfig::default().segment_size(S).unwrap();
    let backup = stream_with(&config, &plain, &[usize::MAX]);
    for threads in [1, 2] {
        let mut r = threaded_reader(&backup[..], threads);
        let mut out = FailingSink {
            got: Vec::new(),
            writes: 0,
            fail: 13,
        };
        let err = r.copy_to(&mut out).unwrap_err();
        assert_eq!(err.to_string(), "the disk is full");
        // The segment the failed write was in goes out again, whole, then the rest.
        let written = out.got.len();
        let resent = written / S * S;
        out.got.truncate(resent);
        // It counts what this call wrote.
        assert_eq!(r.copy_to(&mut out).unwrap(), (plain.len() - resent) as u64);
        assert!(out.got == plain, "{threads} threads");
        assert!(resent < written);
    }
}

#[test]
fn a_large_write_of_whole_segments_keeps_its_last_one_for_finish() {
    // The write's last segment may be the stream's last: it stays buffered, so the stream does
    // not end in an empty segment after the full ones.
    for segments in [64, 65, 100] {
        let plain = pattern(segments * S);
        let one = StreamConfig::default().segment_size(S).unwrap();
        let reference = stream_with(&one, &plain, &[usize::MAX]);
        for threads in [2, 3] {
            let mut w = writer(&one.clone().threads(NonZeroUsize::new(threads).unwrap()));
            w.write_all(&plain).unwrap();
            assert!(
                w.finish().unwrap() == reference,
                "{segments} segments, {threads} threads"
            );
        }
    }
}

#[test]
fn writer_and_reader_share_one_large_call_threshold() {
    // Sixty-four segments, no fewer, go straight through the caller's buffer on both sides.
    assert!(!is_large_io(64 * S - 1, S));
    assert!(is_large_io(64 * S, S));
    assert!(is_large_io(64 * S + S - 1, S));
}

/// Records the size of every buffer it is asked to fill.
struct Recording<'a> {
    data: &'a [u8],
    read: usize,
    asked: Vec<usize>,
}

impl Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.asked.push(buf.len());
        serve(self.data, &mut self.read, buf, usize::MAX)
    }
}

#[test]
fn one_thread_reads_a_segment_straight_into_a_large_enough_buffer_and_nothing_ahead() {
    let plain = pattern(3 * S + 5);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    let input = Recording {
        data: &backup,
        read: 0,
        asked: Vec::new(),
    };
    let mut r = RestoreReader::new(input, &key1()).unwrap();
    let mut small = [0u8; 10];
    r.read_exact(&mut small).unwrap();
    assert_eq!(r.segments_opened_ahead(), 0);
    // The rest of segment 0 comes from the cursor's buffer; segment 1 then goes straight into
    // the caller's buffer (the lookahead already read, the rest of its ciphertext, then the
    // next lookahead into the cursor's buffer).
    let mut big = vec![0u8; 2 * S];
    assert_eq!(r.read(&mut big).unwrap(), S - 10);
    let asked = r.get_ref().asked.len();
    assert_eq!(r.read(&mut big).unwrap(), S);
    assert_eq!(big[..S], plain[S..2 * S]);
    assert_eq!(
        r.get_ref().asked[asked..],
        [S + TAG_LEN - LOOKAHEAD, LOOKAHEAD]
    );
    assert_eq!(r.segments_opened_ahead(), 0);
}

/// A seekable input whose seeks fail once `fail_seeks` is set.
struct SeekFails {
    inner: std::io::Cursor<Vec<u8>>,
    fail_seeks: bool,
}

impl Read for SeekFails {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::io::Seek for SeekFails {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        if self.fail_seeks {
            return Err(std::io::Error::other("seek failed"));
        }
        self.inner.seek(pos)
    }
}

#[test]
fn after_a_failed_inner_seek_reads_fail_until_a_seek_succeeds() {
    use std::io::{Seek, SeekFrom};
    let plain = pattern(3 * S + 5);
    let backup = stream(Some(&key1()), Algorithm::Aes256Gcm, &plain, Vec::new(), 9);
    let input = SeekFails {
        inner: std::io::Cursor::new(backup),
        fail_seeks: false,
    };
    let mut r = RestoreReader::new(input, &key1()).unwrap();
    assert_eq!(r.plaintext_len().unwrap(), plain.len() as u64);
    r.cursor.inner.fail_seeks = true;
    assert!(r.seek(SeekFrom::Start(S as u64 + 3)).is_err());
    let err = r.read(&mut [0u8; 10]).unwrap_err();
    assert!(matches!(
        StreamError::from_io(&err),
        Some(StreamError::InvalidSeek)
    ));
    r.cursor.inner.fail_seeks = false;
    r.seek(SeekFrom::Start(S as u64 + 3)).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, plain[S + 3..]);
}

/// The errors that end a stream stop its cursor for good (every later read repeats them);
/// I/O errors and the others do not.
#[test]
fn only_errors_of_the_stream_itself_stop_a_cursor_for_good() {
    let stops = [
        StreamError::CorruptSegment { index: 7 },
        StreamError::Truncated,
        StreamError::TrailingData,
        StreamError::TooManySegments,
    ];
    for err in &stops {
        let kept = err.permanent().map(|e| e.to_string());
        assert_eq!(kept, Some(err.to_string()));
    }
    let retried = [
        StreamError::Io(std::io::ErrorKind::Interrupted.into()),
        StreamError::InvalidSeek,
        StreamError::Poisoned,
    ];
    for err in &retried {
        assert!(err.permanent().is_none(), "{err}");
    }
}
