//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use strongbox::keys::{Protection, ProviderError};
use strongbox::{MasterKey, MasterKeyProvider};

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
