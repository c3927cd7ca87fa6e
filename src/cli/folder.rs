//! The backups of a folder (an object-store prefix, or a local directory) as their headers
//! describe them, unauthenticated: `backup list`, and the logical chain that `restore FOLDER`
//! and `verify FOLDER` read. Also the backups a command line names, as the library's inputs
//! (files, objects, or the chain of a prefix).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};

use strongbox::backup::{BackupError, BackupId, BackupInfo, BackupInput, BackupKind, printable};
use strongbox::stream::{Header, StreamError};

use super::Context as Ctx;
use super::args::ListArgs;
use super::error::{CliError, CliResult, Context as _, describe};
use super::object::{self, ObjectReader, ObjectUrl};

/// What `backup list` says about trusting its lines.
const UNAUTHENTICATED: &str = "read from each object's header, NOT authenticated: `verify` or \
                               `restore` authenticates a backup";

/// A folder of backups.
enum Folder {
    Dir(PathBuf),
    Prefix(ObjectUrl),
}

/// Where one listed object (or file) is.
#[derive(Clone)]
enum Location {
    File(PathBuf),
    Object(ObjectUrl),
}

/// One object (or file) of a folder, and what its header says it is.
struct Found {
    /// Its name below the folder.
    name: String,
    location: Location,
    size: u64,
    what: What,
}

enum What {
    Backup(Box<BackupInfo>),
    /// Not a backup, and why.
    Other(String),
    /// Could not be read (the store or the file failed), and why.
    Unreadable(String),
}

impl Found {
    fn info(&self) -> Option<&BackupInfo> {
        match &self.what {
            What::Backup(info) => Some(info),
            _ => None,
        }
    }
}

impl Location {
    /// The file or object a command-line argument names.
    fn of(arg: &Path) -> CliResult<Self> {
        Ok(match object::url_of(arg)? {
            Some(url) => Location::Object(url),
            None => Location::File(arg.to_path_buf()),
        })
    }

    /// How messages and the library name it: the URL or the path.
    fn name(&self) -> String {
        match self {
            Location::File(path) => path.to_string_lossy().into_owned(),
            Location::Object(url) => url.to_string(),
        }
    }

    /// The library's input reading it.
    fn input(&self) -> CliResult<BackupInput> {
        Ok(match self {
            Location::File(path) => BackupInput::path(path),
            Location::Object(url) => {
                let reader = ObjectReader::open(url).context(|| "reading")?;
                BackupInput::reader(url.to_string(), reader)
            }
        })
    }
}

impl Folder {
    /// The folder `arg` names: an object URL (a prefix), else a local directory.
    fn of(arg: &Path) -> CliResult<Self> {
        Ok(match object::url_of(arg)? {
            Some(url) => Folder::Prefix(url),
            None => Folder::Dir(arg.to_path_buf()),
        })
    }

    fn name(&self) -> String {
        match self {
            Folder::Dir(dir) => dir.to_string_lossy().into_owned(),
            Folder::Prefix(url) => url.to_string(),
        }
    }

    /// Every object (or regular file) of the folder, by name, each described by its header.
    fn read(&self) -> CliResult<Vec<Found>> {
        match self {
            Folder::Prefix(url) => {
                let entries = object::list(url).context(|| format!("listing {url}"))?;
                let prefix = url.key();
                Ok(entries
                    .into_iter()
                    .map(|entry| {
                        let key = entry.url.key();
                        let name = match prefix.is_empty() {
                            true => key,
                            false => key.strip_prefix(prefix).unwrap_or(key),
                        };
                        Found {
                            name: name.trim_start_matches('/').to_owned(),
                            what: describe_object(&entry.url),
                            location: Location::Object(entry.url),
                            size: entry.size,
                        }
                    })
                    .collect())
            }
            Folder::Dir(dir) => read_dir(dir),
        }
    }
}

/// The files of a local directory (not its subdirectories), by name.
fn read_dir(dir: &Path) -> CliResult<Vec<Found>> {
    let shown = || printable(&dir.to_string_lossy()).into_owned();
    let mut names = std::fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|entry| entry.map(|e| e.file_name()))
                .collect::<io::Result<Vec<_>>>()
        })
        .context(shown)?;
    names.sort();
    let mut found = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let (size, what) = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(meta) if meta.is_file() => (meta.len(), describe_file(&path)),
            Ok(meta) => (meta.len(), What::Other("not a regular file".to_owned())),
            Err(e) => (0, What::Other(format!("cannot be read: {e}"))),
        };
        found.push(Found {
            name: name.to_string_lossy().into_owned(),
            location: Location::File(path),
            size,
            what,
        });
    }
    Ok(found)
}

fn describe_object(url: &ObjectUrl) -> What {
    match ObjectReader::open(url) {
        Ok(reader) => describe_reader(&url.to_string(), reader),
        Err(e) => What::Unreadable(e.to_string()),
    }
}

fn describe_file(path: &Path) -> What {
    match File::open(path) {
        Ok(file) => describe_reader(&path.to_string_lossy(), io::BufReader::new(file)),
        Err(e) => What::Unreadable(e.to_string()),
    }
}

/// What the header `reader` starts with says (nothing after the header is read).
fn describe_reader(name: &str, mut reader: impl Read) -> What {
    let header = match Header::read_from(&mut reader) {
        Ok(header) => header,
        Err(StreamError::Io(e)) if e.kind() != io::ErrorKind::UnexpectedEof => {
            return What::Unreadable(describe(&e));
        }
        Err(e) => return What::Other(e.to_string()),
    };
    if header.extension(MANIFEST_EXTENSION).is_none() {
        return What::Other(
            "a strongbox stream without a manifest (`encrypt`), not a backup".into(),
        );
    }
    match strongbox::backup::inspect_reader(name, header.as_bytes()) {
        Ok(info) => What::Backup(Box::new(info)),
        Err(BackupError::Malformed { reason, .. }) => What::Other(reason),
        Err(BackupError::MalformedWrappedKeys { reason, .. }) => What::Other(reason.to_owned()),
        Err(other) => What::Other(describe(&other)),
    }
}

/// How `backup list` names a backup's kind.
fn kind_name(kind: BackupKind) -> &'static str {
    match kind {
        BackupKind::Snapshot => "snapshot",
        BackupKind::LogicalFull => "full",
        BackupKind::LogicalIncremental => "incremental",
    }
}

/// The key column: the key id, `none` (not encrypted) or `recipients` (only recipient slots
/// hold the key).
fn key_name(info: &BackupInfo) -> String {
    match info.header().key_id() {
        None => "none".to_owned(),
        Some(_) if info.wrapped_keys().is_empty() => "recipients".to_owned(),
        Some(key_id) => key_id.to_string(),
    }
}

/// The chain column of each found object: for an incremental, the name of the backup it
/// follows, or `None` when no object of the folder is that backup.
fn previous_names(found: &[Found]) -> Vec<Option<Option<&str>>> {
    let mut by_id = HashMap::new();
    for f in found {
        if let Some(info) = f.info() {
            by_id
                .entry(info.manifest().backup_id())
                .or_insert(f.name.as_str());
        }
    }
    found
        .iter()
        .map(|f| {
            let previous = f.info()?.manifest().previous_backup_id()?;
            Some(by_id.get(&previous).copied())
        })
        .collect()
}

/// `strongbox backup list`
pub fn list(ctx: &Ctx, args: ListArgs) -> CliResult {
    let folder = Folder::of(&args.folder)?;
    let found = folder.read()?;
    let text = match args.json {
        true => list_json(&folder, &found),
        false => list_text(&folder, &found),
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(ctx.redacted(&text).as_bytes())
        .context(|| "writing to stdout")?;
    let unreadable = found
        .iter()
        .filter(|f| matches!(f.what, What::Unreadable(_)))
        .count();
    if unreadable > 0 {
        return Err(CliError::fail(format!(
            "{unreadable} object(s) of {} could not be read",
            folder.name()
        )));
    }
    Ok(())
}

/// The lines of `backup list`: a comment, a heading, and one line per object.
fn list_text(folder: &Folder, found: &[Found]) -> String {
    let previous = previous_names(found);
    let width = found
        .iter()
        .map(|f| printable(&f.name).chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut text = format!("# {}: {UNAUTHENTICATED}\n", folder.name());
    text += &format!(
        "{:<width$}  {:<12}  {:>12}  {:<20}  {:<32}  CHAIN\n",
        "NAME", "KIND", "SIZE", "CREATED", "KEY"
    );
    for (f, previous) in found.iter().zip(previous) {
        let (kind, created, key, chain) = match &f.what {
            What::Backup(info) => (
                kind_name(info.manifest().kind()).to_owned(),
                info.manifest().created_at_rfc3339(),
                key_name(info),
                chain_text(info, previous),
            ),
            What::Other(why) => ("not-a-backup".into(), "-".into(), "-".into(), why.clone()),
            What::Unreadable(why) => ("unreadable".into(), "-".into(), "-".into(), why.clone()),
        };
        text += &format!(
            "{:<width$}  {kind:<12}  {:>12}  {created:<20}  {key:<32}  {}\n",
            printable(&f.name),
            f.size,
            printable(&chain)
        );
    }
    text
}

/// The chain column of a backup.
fn chain_text(info: &BackupInfo, previous: Option<Option<&str>>) -> String {
    match (previous, info.manifest().previous_backup_id()) {
        (Some(Some(name)), _) => format!("after {name}"),
        (_, Some(id)) => format!("MISSING: follows backup {id}, not found here"),
        (_, None) => "-".to_owned(),
    }
}

/// `backup list --json`: one document.
fn list_json(folder: &Folder, found: &[Found]) -> String {
    let previous = previous_names(found);
    let objects: Vec<serde_json::Value> = found
        .iter()
        .zip(previous)
        .map(|(f, previous)| {
            let mut object = serde_json::json!({
                "name": f.name,
                "location": f.location.name(),
                "size": f.size,
            });
            let fields = match &f.what {
                What::Backup(info) => backup_json(info, previous),
                What::Other(why) => serde_json::json!({ "kind": "not-a-backup", "reason": why }),
                What::Unreadable(why) => serde_json::json!({ "kind": "unreadable", "reason": why }),
            };
            if let (Some(object), serde_json::Value::Object(fields)) =
                (object.as_object_mut(), fields)
            {
                object.extend(fields);
            }
            object
        })
        .collect();
    let document = serde_json::json!({
        "folder": folder.name(),
        "authenticated": false,
        "note": UNAUTHENTICATED,
        "objects": objects,
    });
    format!("{document:#}\n")
}

fn backup_json(info: &BackupInfo, previous: Option<Option<&str>>) -> serde_json::Value {
    let manifest = info.manifest();
    serde_json::json!({
        "kind": kind_name(manifest.kind()),
        "backup_id": manifest.backup_id().to_string(),
        "database": manifest.database_name(),
        "created": manifest.created_at_rfc3339(),
        "key": key_name(info),
        "key_id": info.header().key_id().map(|id| id.to_string()),
        "previous_backup_id": manifest.previous_backup_id().map(|id| id.to_string()),
        "previous": previous.flatten(),
        "previous_missing": previous.is_some_and(|found| found.is_none()),
    })
}

/// Header extension kind of a backup's manifest (`docs/BACKUP.md`, section 1).
pub const MANIFEST_EXTENSION: u16 = 0x0001;

/// Whether `arg` names a folder of backups rather than one backup: an object prefix (a URL
/// ending with `/`) or a local directory.
pub fn is_folder(arg: &Path) -> bool {
    object::is_prefix(arg)
        || (!arg.to_str().is_some_and(strongbox::object::is_object_url) && arg.is_dir())
}

/// The backups a command names, as the library's inputs, with the names reports give them:
/// each file or object in turn, or, for a single folder (a directory, or an object prefix: a
/// URL ending with `/`), the logical chain it holds ([`chain`]).
pub fn backup_inputs(
    ctx: &Ctx,
    args: &[PathBuf],
    command: &str,
) -> CliResult<(Vec<String>, Vec<BackupInput>)> {
    if args.iter().any(|arg| is_folder(arg)) {
        let [prefix] = args else {
            return Err(CliError::usage(
                &[command],
                "a folder (a directory, or a URL ending with /) is given alone: its chain is \
                 found in it",
            ));
        };
        return with_newest_chain(prefix, |folder, members| {
            let names: Vec<&str> = members.iter().map(|f| f.name.as_str()).collect();
            ctx.note(format_args!(
                "the chain under {}: {}",
                printable(folder),
                printable(&names.join(", "))
            ));
            named_inputs(members.iter().map(|f| &f.location).collect())
        });
    }
    let locations = args
        .iter()
        .map(|arg| Location::of(arg))
        .collect::<CliResult<Vec<_>>>()?;
    named_inputs(locations.iter().collect())
}

/// The id of the last backup of the newest logical chain in `arg`, a folder (see [`chain`]):
/// what `--incremental-after FOLDER` follows. Its name goes to stderr.
pub fn chain_end(ctx: &Ctx, arg: &Path) -> CliResult<BackupId> {
    with_newest_chain(arg, |folder, members| {
        let last = members.last().expect("a chain starts with its full backup");
        ctx.note(format_args!(
            "following {}, the end of the chain under {}",
            printable(&last.name),
            printable(folder)
        ));
        let info = last.info().expect("every member is a backup");
        Ok(info.manifest().backup_id())
    })
}

/// Reads the folder `arg` and gives its name and its newest logical chain ([`chain`]) to
/// `use_chain`.
fn with_newest_chain<T>(
    arg: &Path,
    use_chain: impl FnOnce(&str, &[&Found]) -> CliResult<T>,
) -> CliResult<T> {
    let folder = Folder::of(arg)?;
    let name = folder.name();
    let found = folder.read()?;
    use_chain(&name, &chain(&found, &name)?)
}

/// The names and the inputs of `locations`.
fn named_inputs(locations: Vec<&Location>) -> CliResult<(Vec<String>, Vec<BackupInput>)> {
    let inputs = locations
        .iter()
        .map(|l| l.input())
        .collect::<CliResult<_>>()?;
    Ok((locations.iter().map(|l| l.name()).collect(), inputs))
}

/// The newest full logical backup of `found` and its incrementals in order, linked by the
/// previous-backup ids of their (unauthenticated) manifests. Refused: no full backup; two
/// backups following the same one (a fork, or a copy); an incremental as new as the full
/// backup that is not in its chain (a gap: the backup it follows is missing, or it follows
/// another chain).
fn chain<'a>(found: &'a [Found], prefix: &str) -> CliResult<Vec<&'a Found>> {
    let backups: Vec<(&Found, &BackupInfo)> =
        found.iter().filter_map(|f| Some((f, f.info()?))).collect();
    let is = |info: &BackupInfo, kind| info.manifest().kind() == kind;
    let full = backups
        .iter()
        .filter(|(_, info)| is(info, BackupKind::LogicalFull))
        .max_by_key(|(f, info)| (info.manifest().created_unix_seconds(), &f.name))
        .ok_or_else(|| {
            CliError::fail(format!(
                "no full logical backup under {} (a snapshot is restored by its name)",
                printable(prefix)
            ))
        })?;
    let mut members = vec![*full];
    loop {
        let last = members[members.len() - 1].1.manifest().backup_id();
        let next: Vec<_> = backups
            .iter()
            .filter(|(_, info)| info.manifest().previous_backup_id() == Some(last))
            .collect();
        match next.as_slice() {
            [] => break,
            [one] => members.push(**one),
            several => {
                let names: Vec<&str> = several.iter().map(|(f, _)| f.name.as_str()).collect();
                return Err(CliError::fail(format!(
                    "the chain under {} forks: {} all follow {}; restore the backups by name",
                    printable(prefix),
                    printable(&names.join(", ")),
                    printable(&members[members.len() - 1].0.name)
                )));
            }
        }
    }
    refuse_gaps(&backups, &members, prefix)?;
    Ok(members.into_iter().map(|(f, _)| f).collect())
}

/// Refuses incrementals created since the chain's full backup that are not in the chain.
fn refuse_gaps(
    backups: &[(&Found, &BackupInfo)],
    members: &[(&Found, &BackupInfo)],
    prefix: &str,
) -> CliResult {
    let since = members[0].1.manifest().created_unix_seconds();
    let ids: Vec<_> = members
        .iter()
        .map(|(_, i)| i.manifest().backup_id())
        .collect();
    let strays: Vec<&str> = backups
        .iter()
        .filter(|(_, info)| {
            let manifest = info.manifest();
            manifest.kind() == BackupKind::LogicalIncremental
                && manifest.created_unix_seconds() >= since
                && !ids.contains(&manifest.backup_id())
        })
        .map(|(f, _)| f.name.as_str())
        .collect();
    if strays.is_empty() {
        return Ok(());
    }
    Err(CliError::fail(format!(
        "the chain under {} has a gap: {} (created since its full backup {}) are not in its \
         chain (the backup they follow is missing, or belongs to another chain); restore the \
         backups by name",
        printable(prefix),
        printable(&strays.join(", ")),
        printable(&members[0].0.name)
    )))
}
