//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use strongbox::keys::{Protection, ProviderError};
use strongbox::{MasterKey, MasterKeyProvider};

#[path = "../tree/mod.rs"]
pub mod listing;
pub mod vectors;

/// A provider holding a fixed master key (what an embedder's own provider looks like).
#[derive(Debug)]
pub struct InMemory(pub MasterKey);

impl InMemory {
    pub fn new(byte: u8) -> Self {
        Self(MasterKey::from_bytes(&[byte; 32]).unwrap())
    }
}

impl MasterKeyProvider for InMemory {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The 32 bytes 0x00..0x1f, a master key used across tests.
pub fn key_bytes() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

pub const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Writes `bytes` to `path` with Unix mode `mode`.
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).unwrap();
    set_mode(path, mode);
}

pub fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

#[cfg(unix)]
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Writes an executable `/bin/sh` script named `name` into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    write_with_mode(&path, format!("#!/bin/sh\n{body}\n").as_bytes(), 0o755);
    path
}

/// A `printf` format string printing `bytes` exactly (octal escapes).
pub fn printf_octal(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:03o}")).collect()
}

/// Asserts that none of the usual renderings of `secret` appears in `text`.
pub fn assert_no_secret(text: &str, secret: &[u8]) {
    use base64::Engine as _;
    let lower = hex(secret);
    assert!(!text.contains(&lower[..16]), "hex in {text}");
    assert!(!text.contains(&lower[..16].to_uppercase()), "HEX in {text}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    assert!(!text.contains(&b64[..12]), "base64 in {text}");
    let decimal = format!("{}, {}, {}", secret[0], secret[1], secret[2]);
    assert!(!text.contains(&decimal), "decimal bytes in {text}");
}

/// xorshift64: the tests' reproducible random numbers.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` bytes that do not compress, the same for the same `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every regular file below `root`, as its relative path and bytes, sorted. The database key
/// file (wrapped with a fresh salt by each restore) counts by name only; the key store's lock
/// file (which Windows keeps) is left out.
pub fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    listing::listing(root)
        .into_iter()
        .filter_map(|(path, content)| match content {
            None => None,
            Some(_) if path == Path::new("secret.key.encrypted") => Some((path, Vec::new())),
            Some(_) if path == Path::new(".secret.key.lock") => None,
            Some(content) => Some((path, content)),
        })
        .collect()
}

/// A stream of `len` patterned bytes in 4 KiB segments under the key 0x42..., as the fuzz
/// targets make them: the key, the plaintext and the stream.
pub fn small_segment_stream(
    len: usize,
    algorithm: strongbox::stream::Algorithm,
) -> (strongbox::DataKey, Vec<u8>, Vec<u8>) {
    use std::io::Write as _;
    let key = strongbox::DataKey::from_bytes(&[0x42; 32]).unwrap();
    let plain: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
    let config = strongbox::StreamConfig::default()
        .algorithm(algorithm)
        .segment_size(4096)
        .unwrap();
    let mut w =
        strongbox::BackupWriter::with_config(Vec::new(), &key, &config, Vec::new()).unwrap();
    w.write_all(&plain).unwrap();
    (key, plain, w.finish().unwrap())
}
