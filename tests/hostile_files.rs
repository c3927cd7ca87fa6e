//! Hostile key files and key directories (Unix): symbolic links, other owners, directories
//! others can write to. Each is refused with an error that says what to do, and a key is never
//! generated over or beside them.
#![cfg(unix)]

mod common;

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use common::{key_bytes, mode_of, set_mode, write_with_mode};
use strongbox::MasterKeyProvider;
use strongbox::keys::{FileProvider, ProviderError, UnixHomeFileProvider};

fn current_uid() -> u32 {
    tempfile::tempfile().unwrap().metadata().unwrap().uid()
}

/// Changes the owner of `path` (only root can); `false` if this test cannot.
fn chown(path: &Path, uid: u32) -> bool {
    current_uid() == 0 && std::os::unix::fs::chown(path, Some(uid), None).is_ok()
}

const OTHER_UID: u32 = 4_242_424;

#[test]
fn a_key_path_that_is_a_symlink_is_refused_unless_opted_out() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.key");
    write_with_mode(&real, &key_bytes(), 0o600);
    let link = dir.path().join("link.key");
    symlink(&real, &link).unwrap();

    let err = FileProvider::new(&link).fingerprint().unwrap_err();
    assert!(
        matches!(err, ProviderError::KeyFileIsSymlink { opt_out: true, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("symbolic link"), "{text}");
    assert!(
        text.contains("Security.MasterKey.AllowInsecurePermissions"),
        "{text}"
    );
    // The opt-out for secret volumes (Kubernetes mounts keys as links).
    let opted = FileProvider::new(&link).allow_insecure_permissions(true);
    assert_eq!(
        opted.fingerprint().unwrap(),
        FileProvider::new(&real).fingerprint().unwrap()
    );
    // A dangling link is refused as a link, not reported missing.
    let dangling = dir.path().join("dangling.key");
    symlink(dir.path().join("nowhere"), &dangling).unwrap();
    assert!(matches!(
        FileProvider::new(&dangling).fingerprint(),
        Err(ProviderError::KeyFileIsSymlink { .. })
    ));
}

#[test]
fn a_home_key_that_is_a_symlink_is_refused_and_not_replaced() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".strongbox");
    std::fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o700);
    let elsewhere = home.path().join("elsewhere.key");
    write_with_mode(&elsewhere, &key_bytes(), 0o600);
    let path = dir.join("secret.key");
    symlink(&elsewhere, &path).unwrap();

    let err = UnixHomeFileProvider::at(&path).fingerprint().unwrap_err();
    assert!(
        matches!(err, ProviderError::KeyFileIsSymlink { opt_out: false, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("AllowInsecurePermissions"));
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A dangling link where the key should be: never followed to create a key elsewhere.
    std::fs::remove_file(&path).unwrap();
    let target = home.path().join("planted.key");
    symlink(&target, &path).unwrap();
    assert!(UnixHomeFileProvider::at(&path).fingerprint().is_err());
    assert!(!target.exists(), "a key was generated through the link");
}

#[test]
fn a_key_directory_others_can_write_is_refused_before_a_key_is_generated() {
    for mode in [0o777, 0o720, 0o702, 0o1777] {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".strongbox");
        std::fs::create_dir(&dir).unwrap();
        set_mode(&dir, mode);
        let path = dir.join("secret.key");
        let err = UnixHomeFileProvider::at(&path).fingerprint().unwrap_err();
        assert!(
            matches!(
                err,
                ProviderError::InsecurePermissions {
                    expected: 0o700,
                    ..
                }
            ),
            "{mode:o}: {err:?}"
        );
        assert!(
            !path.exists(),
            "{mode:o}: a key was generated in an unsafe directory"
        );
        assert_eq!(mode_of(&dir), mode, "left alone");
    }
}

#[test]
fn a_key_file_owned_by_another_user_is_refused_unless_opted_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    write_with_mode(&path, &key_bytes(), 0o600);
    if !chown(&path, OTHER_UID) {
        eprintln!("skipped: only root can give a file to another user");
        return;
    }
    let err = FileProvider::new(&path).fingerprint().unwrap_err();
    match &err {
        ProviderError::WrongOwner {
            owner,
            current,
            opt_out: true,
            ..
        } => {
            assert_eq!(*owner, OTHER_UID);
            assert_eq!(*current, current_uid());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("chown"), "{err}");
    assert!(
        FileProvider::new(&path)
            .allow_insecure_permissions(true)
            .fingerprint()
            .is_ok()
    );
    // A root-owned key is accepted (as ssh does).
    assert!(chown(&path, 0));
    assert!(FileProvider::new(&path).fingerprint().is_ok());
}

#[test]
fn a_home_key_or_key_directory_owned_by_another_user_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".strongbox").join("secret.key");
    // Generated normally first.
    let fp = UnixHomeFileProvider::at(&path).fingerprint().unwrap();
    if !chown(&path, OTHER_UID) {
        eprintln!("skipped: only root can give a file to another user");
        return;
    }
    let err = UnixHomeFileProvider::at(&path).fingerprint().unwrap_err();
    assert!(
        matches!(err, ProviderError::WrongOwner { opt_out: false, .. }),
        "{err:?}"
    );
    assert!(chown(&path, current_uid()));
    assert_eq!(UnixHomeFileProvider::at(&path).fingerprint().unwrap(), fp);

    let dir = path.parent().unwrap();
    assert!(chown(dir, OTHER_UID));
    let err = UnixHomeFileProvider::at(&path).fingerprint().unwrap_err();
    match err {
        ProviderError::WrongOwner { path: p, .. } => assert_eq!(p, dir),
        other => panic!("{other:?}"),
    }
    // Never regenerated: the key is the same once the directory is fixed.
    assert!(chown(dir, current_uid()));
    assert_eq!(UnixHomeFileProvider::at(&path).fingerprint().unwrap(), fp);
}
