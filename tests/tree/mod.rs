//! Directory listings for tests: a tree as a sorted listing, to compare trees, and the names of
//! a folder's files of one kind. Shared by the integration tests and the crate's unit tests
//! (which include this file by path).

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

/// The names of the files in `dir` that end in `suffix`, without it, sorted.
pub fn names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(suffix).map(str::to_string)
        })
        .collect();
    names.sort();
    names
}
