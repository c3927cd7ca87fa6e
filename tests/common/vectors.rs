//! The backup test vectors, `tests/vectors/backup/` (format in that folder's README.md).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The folder of the backup vectors.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/backup")
}

/// Every vector's name, sorted.
pub fn names() -> Vec<String> {
    super::listing::names(&dir(), ".txt")
}

/// The `field: value` lines of `NAME.txt`.
pub fn meta(name: &str) -> BTreeMap<String, String> {
    fs::read_to_string(dir().join(format!("{name}.txt")))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// `NAME.sbx`, or the chain `NAME.0.sbx`, `NAME.1.sbx`, ...
pub fn files(name: &str) -> Vec<PathBuf> {
    let single = dir().join(format!("{name}.sbx"));
    if single.exists() {
        return vec![single];
    }
    (0..)
        .map(|i| dir().join(format!("{name}.{i}.sbx")))
        .take_while(|p| p.exists())
        .collect()
}
