//! A directory tree as a sorted listing, to compare trees in tests: shared by the integration
//! tests and the unit tests of `src/backup` (which include this file by path).

use std::fs;
use std::path::{Path, PathBuf};

/// Every entry under `root`, by its path relative to `root`, sorted: a directory with `None`,
/// any other entry with its contents.
pub fn listing(root: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                out.push((r.clone(), None));
                stack.push(r);
            } else {
                out.push((r.clone(), Some(fs::read(root.join(&r)).unwrap())));
            }
        }
    }
    out.sort();
    out
}
