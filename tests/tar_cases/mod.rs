//! Hostile snapshot payloads, crafted byte by byte: tar archives that the path rule of
//! `docs/BACKUP.md` section 5 refuses. Shared by `tests/backup_paths.rs` (which restores each
//! one through the public API) and the crate's generator of `tests/vectors/backup/fail_tar_*`
//! (`src/backup/archive.rs`), so the vectors and the tests hold the same bytes.

/// One archive a restore must refuse as malformed.
pub struct Case {
    /// The vector's name: `fail_tar_<name>`.
    pub name: &'static str,
    /// One line for the vector's `.txt`.
    pub description: &'static str,
    /// The snapshot payload.
    pub tar: Vec<u8>,
    /// A part of the error message that says why.
    pub reason: &'static str,
}

/// A 512-byte GNU tar header (magic `ustar `, version ` \0`) with a valid checksum.
pub fn header(name: &[u8], kind: u8, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000600\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(format!("{:011o}\0", 1_700_000_000).as_bytes());
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A header and its data, padded to whole blocks.
pub fn entry(name: &[u8], kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = header(name, kind, data.len()).to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// The data of a PAX extended header: records `<length> <key>=<value>\n`, where the length
/// counts the whole record, its own digits included.
pub fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    out
}

/// The end-of-archive marker: two zero blocks.
pub fn end() -> Vec<u8> {
    vec![0; 1024]
}

/// The archive of these parts, in order.
pub fn archive(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Every hostile archive that today's rule refuses and that earlier versions restored (or
/// failed on with a file-system error instead of refusing).
#[allow(clippy::too_many_lines, reason = "one table, a case per entry")]
pub fn cases() -> Vec<Case> {
    let file = |name: &str| entry(name.as_bytes(), b'0', b"data");
    vec![
        Case {
            name: "dot_slash_key_file",
            description: "a regular file ./secret.key.encrypted (the key file at the top)",
            tar: archive(&[file("./secret.key.encrypted"), end()]),
            reason: "a file of the key store",
        },
        Case {
            name: "pax_path_key_file",
            description: "a PAX extended header (type x) with path=./secret.key.encrypted",
            tar: archive(&[
                entry(
                    b"./PaxHeaders/innocent",
                    b'x',
                    &pax(&[("path", "./secret.key.encrypted")]),
                ),
                file("innocent"),
                end(),
            ]),
            reason: "type `x` (a PAX extended header)",
        },
        Case {
            name: "gnu_long_name_key_file",
            description: "a GNU long name (type L) ./secret.key.encrypted",
            tar: archive(&[
                entry(b"././@LongLink", b'L', b"./secret.key.encrypted\0"),
                file("innocent"),
                end(),
            ]),
            reason: "a file of the key store",
        },
        Case {
            name: "key_lock_file",
            description: "the key store's lock file .secret.key.lock at the top",
            tar: archive(&[file(".secret.key.lock"), end()]),
            reason: "a file of the key store",
        },
        Case {
            name: "key_temporary_file",
            description: "a temporary of the key store, .secret.key.encrypted.Ab3dE9.tmp, at the top",
            tar: archive(&[file(".secret.key.encrypted.Ab3dE9.tmp"), end()]),
            reason: "a file of the key store",
        },
        Case {
            name: "directory_twice",
            description: "the directory d given twice, as d/ then d",
            tar: archive(&[entry(b"d/", b'5', b""), entry(b"d", b'5', b""), end()]),
            reason: "the path appears twice",
        },
        Case {
            name: "type_7",
            description: "an entry of type 7 (contiguous file)",
            tar: archive(&[entry(b"data", b'7', b"data"), end()]),
            reason: "type `7` (a contiguous file)",
        },
        Case {
            name: "type_nul",
            description: "an entry of type NUL (old-style regular file)",
            tar: archive(&[entry(b"data", 0, b"data"), end()]),
            reason: "type `\\0` (an old-style regular file)",
        },
        Case {
            name: "pax_header",
            description: "a PAX extended header (type x) with only an mtime, then a regular file",
            tar: archive(&[
                entry(b"./PaxHeaders/data", b'x', &pax(&[("mtime", "1700000000")])),
                file("data"),
                end(),
            ]),
            reason: "type `x` (a PAX extended header)",
        },
        Case {
            name: "no_end_marker",
            description: "a regular file, then the end of the payload without an end marker",
            tar: file("data"),
            reason: "end-of-archive marker",
        },
        Case {
            name: "one_zero_block",
            description: "a regular file, then one zero block (the end marker is two)",
            tar: archive(&[file("data"), vec![0; 512]]),
            reason: "end-of-archive marker",
        },
        Case {
            name: "file_name_ends_with_slash",
            description: "a regular file (type 0) named data/",
            tar: archive(&[file("data/"), end()]),
            reason: "a regular file's name ends with `/`",
        },
        Case {
            name: "directory_with_data",
            description: "a directory entry (type 5) whose size is not zero",
            tar: archive(&[entry(b"d", b'5', b"data"), end()]),
            reason: "directory entry `d` has data",
        },
        Case {
            name: "entry_inside_file",
            description: "a regular file a, then a regular file a/b inside it",
            tar: archive(&[file("a"), file("a/b"), end()]),
            reason: "is inside the file `a`",
        },
    ]
}
