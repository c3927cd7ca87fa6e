//! Backup keys wrapped to age recipients: round trips for each recipient type, write-only
//! logical backups and chains, wrong identities, tampered slots, and interop with the `age` tool.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use strongbox::backup::{
    Authentication, BackupError, Channel, EXT_RECIPIENT_SLOTS, Identities, MasterKeys, Recipients,
    RestoreConfig, Rewrap, parse_slots, restore, rewrap,
};
use strongbox::keys::{Protection, ProviderError};
use strongbox::stream::Header;
use strongbox::{
    DataKey, DatabaseKeyStore, LogicalBackup, MasterKey, MasterKeyProvider, SnapshotBackup,
};

#[derive(Debug)]
struct Fixed(MasterKey);

impl MasterKeyProvider for Fixed {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0))
    }
}

fn provider() -> Arc<dyn MasterKeyProvider> {
    Arc::new(Fixed(MasterKey::generate().unwrap()))
}

const AUTH: Channel = Channel::Authenticated;

/// An X25519 identity written as `age-keygen` writes it, and its recipient.
fn x25519(dir: &Path, name: &str) -> (PathBuf, String) {
    let identity = age::x25519::Identity::generate();
    let path = dir.join(name);
    use age::secrecy::ExposeSecret;
    fs::write(&path, format!("{}\n", identity.to_string().expose_secret())).unwrap();
    (path, identity.to_public().to_string())
}

struct Fx {
    tmp: tempfile::TempDir,
    keys: MasterKeys,
    db: PathBuf,
}

impl Fx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("orders");
        fs::create_dir(&db).unwrap();
        fs::write(db.join("data.db"), b"rows and rows").unwrap();
        Self {
            keys: MasterKeys::new(provider()),
            tmp,
            db,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn logical(&self, name: &str, backup: LogicalBackup, export: &[u8]) -> PathBuf {
        let path = self.path(name);
        backup.write_from(export, &path, &self.keys, AUTH).unwrap();
        path
    }

    fn restore_with(
        &self,
        files: &[&Path],
        identities: Identities,
        keys: &MasterKeys,
    ) -> Result<PathBuf, BackupError> {
        let target = self.path(&format!("restored-{}", rand_suffix()));
        let config = RestoreConfig::new(files.iter().copied(), &target).with_identities(identities);
        restore(&config, keys, AUTH)?;
        Ok(target)
    }
}

fn rand_suffix() -> String {
    DataKey::generate().unwrap().id().to_string()
}

fn slots_of(path: &Path) -> Vec<Vec<u8>> {
    let header = Header::read_from(&mut fs::File::open(path).unwrap()).unwrap();
    parse_slots(header.extension(EXT_RECIPIENT_SLOTS).unwrap()).unwrap()
}

#[test]
fn write_only_logical_backup_opens_only_with_an_identity() {
    let fx = Fx::new();
    let (id_path, recipient) = x25519(fx.tmp.path(), "id.txt");
    let recipients = Recipients::new().with(&recipient).unwrap();
    let backup = LogicalBackup::full(&fx.db)
        .recipients(recipients)
        .write_only();
    let file = fx.logical("0.full", backup, b"export");

    // Nothing the writing host holds opens it: not its master key, not the database key.
    let err = fx
        .restore_with(&[&file], Identities::new(), &fx.keys)
        .unwrap_err();
    assert!(
        matches!(err, BackupError::KeyUnavailable { copies: 0, .. }),
        "{err:?}"
    );
    let db_key = DatabaseKeyStore::new(Arc::clone(fx.keys.current()))
        .load_or_create(&fx.db)
        .unwrap();
    let target = fx.path("with-db-key");
    let config = RestoreConfig::new([&file], &target).with_key(db_key);
    assert!(matches!(
        restore(&config, &fx.keys, AUTH),
        Err(BackupError::WrongKey { .. })
    ));

    // Another host with only the identity restores it.
    let elsewhere = MasterKeys::new(provider());
    let ids = Identities::new().with_file(&id_path).unwrap();
    let target = fx.restore_with(&[&file], ids, &elsewhere).unwrap();
    assert_eq!(
        fs::read(target.join("0000-logical-full.export")).unwrap(),
        b"export"
    );
}

#[test]
fn each_recipient_type_and_several_recipients() {
    let fx = Fx::new();
    let dir = fx.tmp.path();
    let (x_path, x_recipient) = x25519(dir, "x.txt");
    let mut recipients = Recipients::new().with(&x_recipient).unwrap();
    let mut identity_files = vec![x_path];
    for kind in ["ed25519", "rsa"] {
        let key = dir.join(format!("id_{kind}"));
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-f"])
            .arg(&key)
            .status();
        match status {
            Ok(s) if s.success() => {}
            _ => {
                eprintln!("ssh-keygen unavailable: skipping the {kind} recipient");
                continue;
            }
        }
        let public = fs::read_to_string(key.with_extension("pub")).unwrap();
        recipients = recipients.with(&public).unwrap();
        identity_files.push(key);
    }
    let n = recipients.len();
    let backup = LogicalBackup::full(&fx.db)
        .recipients(recipients)
        .write_only();
    let file = fx.logical("0.full", backup, b"export");
    assert_eq!(slots_of(&file).len(), n);
    for id in identity_files {
        let ids = Identities::new().with_file(&id).unwrap();
        fx.restore_with(&[&file], ids, &MasterKeys::new(provider()))
            .unwrap_or_else(|e| panic!("{}: {e}", id.display()));
    }
}

#[test]
fn wrong_identity_is_a_typed_error_naming_no_key() {
    let fx = Fx::new();
    let (_, recipient) = x25519(fx.tmp.path(), "right.txt");
    let (wrong, _) = x25519(fx.tmp.path(), "wrong.txt");
    let backup = LogicalBackup::full(&fx.db)
        .recipients(Recipients::new().with(&recipient).unwrap())
        .write_only();
    let file = fx.logical("0.full", backup, b"export");
    let ids = Identities::new().with_file(&wrong).unwrap();
    let err = fx.restore_with(&[&file], ids, &fx.keys).unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::NoMatchingIdentity {
                position: 0,
                slots: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let secret = fs::read_to_string(&wrong).unwrap();
    assert!(!err.to_string().contains(secret.trim()));
    assert!(!err.to_string().contains("AGE-SECRET-KEY"));
}

#[test]
fn a_tampered_slot_is_refused() {
    let fx = Fx::new();
    let (id_path, recipient) = x25519(fx.tmp.path(), "id.txt");
    let backup = LogicalBackup::full(&fx.db)
        .recipients(Recipients::new().with(&recipient).unwrap())
        .write_only();
    let file = fx.logical("0.full", backup, b"export");
    let bytes = fs::read(&file).unwrap();
    let slot = &slots_of(&file)[0];
    let at = bytes
        .windows(slot.len())
        .position(|w| w == &slot[..])
        .unwrap();
    // Every byte of the slot's header and body: flipping it never restores.
    for i in (0..slot.len()).step_by(7) {
        let mut bad = bytes.clone();
        bad[at + i] ^= 0x01;
        let path = fx.path(&format!("bad-{i}"));
        fs::write(&path, &bad).unwrap();
        let ids = Identities::new().with_file(&id_path).unwrap();
        let err = fx.restore_with(&[&path], ids, &fx.keys).unwrap_err();
        assert!(
            matches!(
                err,
                BackupError::Tampered { .. }
                    | BackupError::MalformedRecipientSlots { .. }
                    | BackupError::NoMatchingIdentity { .. }
            ),
            "byte {i}: {err:?}"
        );
    }
}

#[test]
fn write_only_chain_restores_each_member_vouched_for_by_its_own_key() {
    let fx = Fx::new();
    let (id_path, recipient) = x25519(fx.tmp.path(), "id.txt");
    let r = || Recipients::new().with(&recipient).unwrap();
    let full = fx.path("0.full");
    let manifest = LogicalBackup::full(&fx.db)
        .recipients(r())
        .write_only()
        .write_from(&b"full"[..], &full, &fx.keys, AUTH)
        .unwrap();
    let inc = fx.path("1.inc");
    let inc_manifest = LogicalBackup::incremental(&fx.db, manifest.backup_id())
        .recipients(r())
        .write_only()
        .write_from(&b"inc"[..], &inc, &fx.keys, AUTH)
        .unwrap();
    assert_ne!(manifest.key_id(), inc_manifest.key_id());

    let target = fx.path("chain");
    let config = RestoreConfig::new([&full, &inc], &target)
        .with_identities(Identities::new().with_file(&id_path).unwrap());
    let report = restore(&config, &MasterKeys::new(provider()), AUTH).unwrap();
    assert_eq!(
        report.authentication,
        [
            Authentication::Key(manifest.key_id().unwrap()),
            Authentication::Key(inc_manifest.key_id().unwrap())
        ]
    );
    assert_eq!(
        fs::read(target.join("0001-logical-incremental.export")).unwrap(),
        b"inc"
    );
}

#[test]
fn write_only_with_a_recovery_master_key_restores_without_identity() {
    let fx = Fx::new();
    let recovery = provider();
    let keys = fx.keys.clone().with_recovery(Arc::clone(&recovery));
    let (_, recipient) = x25519(fx.tmp.path(), "id.txt");
    let file = fx.path("0.full");
    LogicalBackup::full(&fx.db)
        .recipients(Recipients::new().with(&recipient).unwrap())
        .write_only()
        .write_from(&b"export"[..], &file, &keys, AUTH)
        .unwrap();
    // Not the current master key, only the recovery one.
    assert!(
        fx.restore_with(&[&file], Identities::new(), &fx.keys)
            .is_err()
    );
    fx.restore_with(&[&file], Identities::new(), &MasterKeys::new(recovery))
        .unwrap();
}

#[test]
fn snapshot_keeps_the_database_key_and_adds_recipient_copies() {
    let fx = Fx::new();
    DatabaseKeyStore::new(Arc::clone(fx.keys.current()))
        .create(&fx.db)
        .unwrap();
    let (id_path, recipient) = x25519(fx.tmp.path(), "id.txt");
    let file = fx.path("snap");
    SnapshotBackup::of_directory(&fx.db)
        .recipients(Recipients::new().with(&recipient).unwrap())
        .write(&file, &fx.keys, AUTH)
        .unwrap();
    fx.restore_with(&[&file], Identities::new(), &fx.keys)
        .unwrap();
    let ids = Identities::new().with_file(&id_path).unwrap();
    let target = fx
        .restore_with(&[&file], ids, &MasterKeys::new(provider()))
        .unwrap();
    assert_eq!(fs::read(target.join("data.db")).unwrap(), b"rows and rows");

    // An unencrypted database's snapshot has no key to wrap; a snapshot is never write-only.
    let plain = fx.path("plain");
    fs::create_dir(&plain).unwrap();
    let unencrypted = SnapshotBackup::of_directory(&plain)
        .recipients(Recipients::new().with(&recipient).unwrap())
        .write(fx.path("plain.snap"), &fx.keys, AUTH);
    assert!(matches!(
        unencrypted,
        Err(BackupError::RecipientsForUnencryptedBackup)
    ));
}

#[test]
fn invalid_recipients_and_identities_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["", "age1", "ssh-dss AAAA", "AGE-SECRET-KEY-1QQQ"] {
        assert!(matches!(
            Recipients::new().with(bad),
            Err(BackupError::InvalidRecipient { .. })
        ));
    }
    // A secret key given as a recipient by mistake is never echoed.
    let secret = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    let err = Recipients::new().with(secret).unwrap_err();
    assert!(!err.to_string().contains("GFPYYSJZ"), "{err}");
    let file = tmp.path().join("not-an-identity");
    fs::write(&file, "hello\n").unwrap();
    let err = Identities::new().with_file(&file).unwrap_err();
    assert!(matches!(err, BackupError::InvalidIdentity { .. }));
    assert!(!err.to_string().contains("hello"));
    let empty = tmp.path().join("empty-recipients");
    fs::write(&empty, "# nobody\n\n").unwrap();
    assert!(matches!(
        Recipients::new().with_file(&empty),
        Err(BackupError::InvalidRecipient { .. })
    ));
}

/// `age-keygen` makes the identity, `age -d -i` opens a slot strongbox wrote (cut out of the
/// header as docs/BACKUP.md says), and a slot made by `age -r` opens the backup.
#[test]
fn interop_with_the_age_tool() {
    if Command::new("age").arg("--version").output().is_err() {
        eprintln!("the age tool is not installed: skipping");
        return;
    }
    let fx = Fx::new();
    let id_path = fx.path("age-id.txt");
    assert!(
        Command::new("age-keygen")
            .arg("-o")
            .arg(&id_path)
            .status()
            .unwrap()
            .success()
    );
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&id_path)
        .output()
        .unwrap();
    let recipient = String::from_utf8(out.stdout).unwrap();

    let file = fx.logical(
        "0.full",
        LogicalBackup::full(&fx.db)
            .recipients(Recipients::new().with(&recipient).unwrap())
            .write_only(),
        b"export",
    );
    let slot_path = fx.path("slot.age");
    fs::write(&slot_path, &slots_of(&file)[0]).unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&id_path)
        .arg(&slot_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = DataKey::from_base64(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    let header = Header::read_from(&mut fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(Some(key.id()), header.key_id());

    // The other way: the key text encrypted by `age -r` is a slot strongbox opens.
    let mut child = Command::new("age")
        .arg("-r")
        .arg(recipient.trim())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use strongbox::secrecy::ExposeSecret;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", key.to_base64().expose_secret()).unwrap();
    }
    let made_by_age = child.wait_with_output().unwrap().stdout;
    let rewrapped = fx.path("by-age.full");
    fs::write(
        &rewrapped,
        replace_slot(
            &fs::read(&file).unwrap(),
            &slots_of(&file)[0],
            &made_by_age,
            &key,
        ),
    )
    .unwrap();
    let ids = Identities::new().with_file(&id_path).unwrap();
    let target = fx
        .restore_with(&[&rewrapped], ids, &MasterKeys::new(provider()))
        .unwrap();
    assert_eq!(
        fs::read(target.join("0000-logical-full.export")).unwrap(),
        b"export"
    );
}

/// The backup with its one slot replaced by `slot`, the header resealed with `key`.
fn replace_slot(backup: &[u8], old: &[u8], slot: &[u8], key: &DataKey) -> Vec<u8> {
    let header = Header::read_from(&mut &backup[..]).unwrap();
    let rest = &backup[header.encoded_len()..];
    let mut ext = vec![1u8];
    ext.extend_from_slice(&(slot.len() as u32).to_be_bytes());
    ext.extend_from_slice(slot);
    let extensions: Vec<_> = header
        .extensions()
        .iter()
        .map(|e| {
            if e.kind == EXT_RECIPIENT_SLOTS {
                assert!(e.value.windows(old.len()).any(|w| w == old));
                strongbox::stream::Extension::new(e.kind, ext.clone())
            } else {
                e.clone()
            }
        })
        .collect();
    let resealed = header.reseal(Some(key), extensions).unwrap();
    let mut out = resealed.as_bytes().to_vec();
    out.extend_from_slice(rest);
    out
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn rewrap_adds_and_removes_ways_in_and_copies_the_data_unchanged() {
    let fx = Fx::new();
    DatabaseKeyStore::new(Arc::clone(fx.keys.current()))
        .create(&fx.db)
        .unwrap();
    let file = fx.logical("0.full", LogicalBackup::full(&fx.db), b"export");
    let before = fs::read(&file).unwrap();
    let (id_path, recipient) = x25519(fx.tmp.path(), "id.txt");

    // Add a recipient and drop the database-key copy: write-only after the fact.
    let current = fx.keys.current().fingerprint().unwrap().unwrap();
    let changes = Rewrap::new()
        .add_recipients(Recipients::new().with(&recipient).unwrap())
        .remove_master_key(current);
    let report = rewrap(&file, &changes, &fx.keys).unwrap();
    assert_eq!((report.wrapped_copies, report.recipient_slots), (0, 1));
    let after = fs::read(&file).unwrap();
    let old_header = Header::read_from(&mut &before[..]).unwrap();
    let new_header = Header::read_from(&mut &after[..]).unwrap();
    assert_eq!(
        &before[old_header.encoded_len()..],
        &after[new_header.encoded_len()..],
        "the segments are copied unchanged"
    );
    assert!(
        fx.restore_with(&[&file], Identities::new(), &fx.keys)
            .is_err()
    );
    let ids = || Identities::new().with_file(&id_path).unwrap();
    fx.restore_with(&[&file], ids(), &MasterKeys::new(provider()))
        .unwrap();

    // Removing the last slot is refused, and leaves the file as it was.
    let err = rewrap(
        &file,
        &Rewrap::new().with_identities(ids()).remove_slot(0),
        &fx.keys,
    )
    .unwrap_err();
    assert!(matches!(err, BackupError::NoWayIn), "{err:?}");
    assert_eq!(fs::read(&file).unwrap(), after);
    assert!(matches!(
        rewrap(
            &file,
            &Rewrap::new().with_identities(ids()).remove_slot(1),
            &fx.keys
        ),
        Err(BackupError::NoSuchSlot { index: 1, slots: 1 })
    ));

    // The identity opens it to give the copy back to the master key, then the slot goes.
    let changes = Rewrap::new()
        .with_identities(ids())
        .add_master_key(Arc::clone(fx.keys.current()))
        .remove_slot(0);
    let report = rewrap(&file, &changes, &MasterKeys::new(provider())).unwrap();
    assert_eq!((report.wrapped_copies, report.recipient_slots), (1, 0));
    let target = fx
        .restore_with(&[&file], Identities::new(), &fx.keys)
        .unwrap();
    assert_eq!(
        fs::read(target.join("0000-logical-full.export")).unwrap(),
        b"export"
    );
    assert!(
        listing(fx.tmp.path()).iter().all(|n| !n.ends_with(".tmp")),
        "{:?}",
        listing(fx.tmp.path())
    );
}

#[test]
fn rewrap_refuses_a_tampered_header_and_a_stranger() {
    let fx = Fx::new();
    let (id_path, recipient) = x25519(fx.tmp.path(), "id.txt");
    let (wrong, _) = x25519(fx.tmp.path(), "wrong.txt");
    let backup = LogicalBackup::full(&fx.db)
        .recipients(Recipients::new().with(&recipient).unwrap())
        .write_only();
    let file = fx.logical("0.full", backup, b"export");
    let original = fs::read(&file).unwrap();
    let changes = Rewrap::new()
        .with_identities(Identities::new().with_file(&wrong).unwrap())
        .add_master_key(provider());
    assert!(matches!(
        rewrap(&file, &changes, &fx.keys),
        Err(BackupError::NoMatchingIdentity { .. })
    ));

    // A byte of the manifest changed: the header no longer authenticates.
    let mut bad = original.clone();
    let at = bad.windows(8).position(|w| w == b"\"orders\"").unwrap();
    bad[at + 1] = b'O';
    fs::write(&file, &bad).unwrap();
    let changes = Rewrap::new()
        .with_identities(Identities::new().with_file(&id_path).unwrap())
        .add_master_key(provider());
    let err = rewrap(&file, &changes, &fx.keys).unwrap_err();
    assert!(
        matches!(err, BackupError::Tampered { segment: None, .. }),
        "{err:?}"
    );
    assert_eq!(fs::read(&file).unwrap(), bad);
}

/// `tests/vectors/recipients/`: a write-only backup and its rewrapped copy, made by the CLI.
#[test]
fn recipient_vectors_restore() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/recipients");
    let fx = Fx::new();
    let export = fs::read(dir.join("export.bin")).unwrap();
    let ids = || {
        Identities::new()
            .with_file(dir.join("identity.txt"))
            .unwrap()
    };
    let write_only = dir.join("write-only.full.sbx");
    let rewrapped = dir.join("rewrapped.full.sbx");
    for file in [&write_only, &rewrapped] {
        let target = fx.restore_with(&[file], ids(), &fx.keys).unwrap();
        assert_eq!(
            fs::read(target.join("0000-logical-full.export")).unwrap(),
            export
        );
    }
    // Git keeps no mode: the master-key file is copied owner-only first.
    let master_file = fx.path("master.key");
    fs::write(&master_file, fs::read(dir.join("master.key")).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&master_file, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let master = Arc::new(strongbox::keys::FileProvider::new(master_file));
    let target = fx
        .restore_with(
            &[&rewrapped],
            Identities::new(),
            &MasterKeys::new(master.clone()),
        )
        .unwrap();
    assert_eq!(
        fs::read(target.join("0000-logical-full.export")).unwrap(),
        export
    );
    assert!(
        fx.restore_with(&[&write_only], Identities::new(), &MasterKeys::new(master))
            .is_err()
    );
    let (a, b) = (
        fs::read(&write_only).unwrap(),
        fs::read(&rewrapped).unwrap(),
    );
    let (ha, hb) = (
        Header::read_from(&mut &a[..]).unwrap(),
        Header::read_from(&mut &b[..]).unwrap(),
    );
    assert_eq!(&a[ha.encoded_len()..], &b[hb.encoded_len()..]);
    assert_eq!(slots_of(&write_only), slots_of(&rewrapped));
    assert_eq!(
        strongbox::backup::slot_stanzas(&slots_of(&write_only)[0]),
        ["X25519"]
    );
}

/// Answers every passphrase request with one passphrase, and counts the requests.
#[derive(Clone)]
struct Passphrase(&'static str, Arc<std::sync::atomic::AtomicUsize>);

impl age::Callbacks for Passphrase {
    fn display_message(&self, _: &str) {}

    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, _: &str) -> Option<age::secrecy::SecretString> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(self.0.to_owned().into())
    }
}

#[test]
#[cfg_attr(
    all(windows, debug_assertions),
    ignore = "age reads its messages from its source folder at run time in debug builds \
              (rust-embed), which a cross-compiled test run under Wine cannot reach"
)]
fn passphrase_protected_identities_ask_through_the_callbacks() {
    let fx = Fx::new();
    let (plain, recipient) = x25519(fx.tmp.path(), "plain.txt");
    // `age -p` of an identity file, as the age library writes it.
    let encrypted = fx.path("id.age");
    let encryptor = age::Encryptor::with_user_passphrase("correct horse".to_owned().into());
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(&fs::read(&plain).unwrap()).unwrap();
    writer.finish().unwrap();
    fs::write(&encrypted, out).unwrap();

    let backup = LogicalBackup::full(&fx.db)
        .recipients(Recipients::new().with(&recipient).unwrap())
        .write_only();
    let file = fx.logical("0.full", backup, b"export");
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ids = Identities::new()
        .with_file_prompting(&encrypted, Passphrase("correct horse", Arc::clone(&asked)))
        .unwrap();
    fx.restore_with(&[&file], ids, &fx.keys).unwrap();
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);

    let ids = Identities::new()
        .with_file_prompting(&encrypted, Passphrase("wrong", Arc::clone(&asked)))
        .unwrap();
    let err = fx.restore_with(&[&file], ids, &fx.keys).unwrap_err();
    assert!(
        matches!(err, BackupError::NoMatchingIdentity { cause: Some(_), .. }),
        "{err:?}"
    );
    // Without callbacks a protected file cannot be opened.
    let err = fx
        .restore_with(
            &[&file],
            Identities::new().with_file(&encrypted).unwrap(),
            &fx.keys,
        )
        .unwrap_err();
    assert!(
        matches!(err, BackupError::NoMatchingIdentity { .. }),
        "{err:?}"
    );
}

const CRASH_ROOT_ENV: &str = "STRONGBOX_TEST_REWRAP_CRASH_ROOT";

/// A master key fixed by a seed byte, so that the killed child and the test share it.
fn seeded_master(seed: u8) -> Arc<dyn MasterKeyProvider> {
    Arc::new(Fixed(MasterKey::from_bytes(&[seed; 32]).unwrap()))
}

/// The child side of `rewrap_killed_at_any_moment_leaves_the_old_file_or_the_new_one`: adds and
/// removes a recipient slot of `root/backup` until killed.
#[test]
fn rewrap_crash_child() {
    let Some(root) = std::env::var_os(CRASH_ROOT_ENV) else {
        return;
    };
    let file = PathBuf::from(root).join("backup");
    let keys = MasterKeys::new(seeded_master(7));
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    println!("READY");
    std::io::stdout().flush().unwrap();
    loop {
        let add = Rewrap::new().add_recipients(Recipients::new().with(&recipient).unwrap());
        rewrap(&file, &add, &keys).unwrap();
        rewrap(&file, &Rewrap::new().remove_slot(0), &keys).unwrap();
    }
}

/// SIGKILL at random moments of a rewrap loop: the backup is always whole (the old file or the
/// new one: it restores with the master key to the same export), and no temporary is mistaken
/// for it.
#[cfg(unix)]
#[test]
fn rewrap_killed_at_any_moment_leaves_the_old_file_or_the_new_one() {
    use std::io::Read as _;
    use std::process::Stdio;

    let fx = Fx::new();
    let keys = MasterKeys::new(seeded_master(7));
    let root = fx.path("crash");
    fs::create_dir(&root).unwrap();
    let file = root.join("backup");
    let export: Vec<u8> = (0..100_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    DatabaseKeyStore::new(seeded_master(7))
        .create(&fx.db)
        .unwrap();
    LogicalBackup::full(&fx.db)
        .write_from(&export[..], &file, &keys, AUTH)
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    for round in 0..12 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "rewrap_crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_ROOT_ENV, &root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("READY") {
            assert_ne!(out.read(&mut byte).unwrap(), 0, "the child exited early");
            seen.push(byte[0]);
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_micros(seed % 60_000));
        assert!(
            child.try_wait().unwrap().is_none(),
            "round {round}: the child failed"
        );
        child.kill().unwrap();
        child.wait().unwrap();

        let target = fx.path(&format!("restored-{round}"));
        let config = RestoreConfig::new([&file], &target);
        restore(&config, &keys, AUTH).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(
            fs::read(target.join("0000-logical-full.export")).unwrap(),
            export
        );
    }
    // The next rewrap removes what killed ones left.
    rewrap(&file, &Rewrap::new().add_master_key(provider()), &keys).unwrap();
    assert_eq!(listing(&root), ["backup"]);
}
