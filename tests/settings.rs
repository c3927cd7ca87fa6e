//! `settings.json` master-key configuration.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use strongbox::keys::{MasterKeySource, SettingsError};
use strongbox::{DataKey, MasterKeySettings, ProtectedKey};

fn source(json: &str) -> Result<MasterKeySource, SettingsError> {
    MasterKeySettings::from_json_str(json)?.source()
}

fn exec_parts(source: MasterKeySource) -> (PathBuf, Vec<String>, Duration) {
    match source {
        MasterKeySource::Exec {
            program,
            args,
            timeout,
        } => (program, args, timeout),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ravendb_style_exec_with_other_keys_ignored() {
    let (program, args, timeout) = exec_parts(
        source(
            r#"{
                "ServerUrl": "https://rvn-srv-1:8080",
                "Setup.Mode": "None",
                "DataDir": "RavenData",
                "Security.Certificate.Path": "your-server-cert.pfx",
                "Security.MasterKey.Exec": "C:\\secrets\\GiveMeKey.exe"
            }"#,
        )
        .unwrap(),
    );
    assert_eq!(program, PathBuf::from("C:\\secrets\\GiveMeKey.exe"));
    assert!(args.is_empty());
    assert_eq!(timeout, Duration::from_secs(30));
}

#[test]
fn exec_arguments_as_string_or_array_and_timeout() {
    let (_, args, timeout) = exec_parts(
        source(
            r#"{"Security.MasterKey.Exec": "/bin/key",
                "Security.MasterKey.Exec.Arguments": "--vault \"prod keys\" 'a;b' $HOME \\*",
                "Security.MasterKey.Exec.TimeoutInSec": 7}"#,
        )
        .unwrap(),
    );
    assert_eq!(args, ["--vault", "prod keys", "a;b", "$HOME", "*"]);
    assert_eq!(timeout, Duration::from_secs(7));

    let (_, args, timeout) = exec_parts(
        source(
            r#"{"Security.MasterKey.Exec": "/bin/key",
                "Security.MasterKey.Exec.Arguments": ["one arg", "'two'"],
                "Security.MasterKey.Exec.TimeoutInSec": "15"}"#,
        )
        .unwrap(),
    );
    assert_eq!(args, ["one arg", "'two'"]);
    assert_eq!(timeout, Duration::from_secs(15));
}

#[test]
fn path_and_the_permissions_opt_out() {
    assert_eq!(
        source(r#"{"Security.MasterKey.Path": "/etc/key"}"#).unwrap(),
        MasterKeySource::File {
            path: "/etc/key".into(),
            allow_insecure_permissions: false
        }
    );
    for value in ["true", "\"true\"", "\"TRUE\""] {
        assert_eq!(
            source(&format!(
                r#"{{"Security.MasterKey.Path": "/etc/key",
                    "Security.MasterKey.AllowInsecurePermissions": {value}}}"#
            ))
            .unwrap(),
            MasterKeySource::File {
                path: "/etc/key".into(),
                allow_insecure_permissions: true
            }
        );
    }
}

#[test]
fn neither_set_is_the_os_default() {
    for json in [
        "{}",
        r#"{"ServerUrl": "x"}"#,
        r#"{"Security": {"Certificate": {"Path": "c.pfx"}}, "SecurityMaster": 1}"#,
    ] {
        assert_eq!(
            source(json).unwrap(),
            MasterKeySource::os_default(),
            "{json}"
        );
    }
    #[cfg(not(windows))]
    assert_eq!(
        MasterKeySource::os_default(),
        MasterKeySource::UnixHomeFile { path: None }
    );
    #[cfg(windows)]
    assert_eq!(MasterKeySource::os_default(), MasterKeySource::Dpapi);
}

#[test]
fn invalid_settings_are_errors() {
    let both =
        source(r#"{"Security.MasterKey.Exec": "/bin/key", "Security.MasterKey.Path": "/k"}"#);
    assert!(matches!(both, Err(SettingsError::ExecAndPath)), "{both:?}");
    assert!(matches!(
        source(r#"{"Security.MasterKey.Exec.Arguments": "x"}"#),
        Err(SettingsError::WithoutExec { .. })
    ));
    assert!(matches!(
        source(r#"{"Security.MasterKey.Path": "/k", "Security.MasterKey.Exec.TimeoutInSec": 5}"#),
        Err(SettingsError::WithoutExec { .. })
    ));
    for bad in [
        r#"{"Security.MasterKey.Exec": "/k", "Security.MasterKey.Exec.Arguments": "'unbalanced"}"#,
        r#"{"Security.MasterKey.Exec": "/k", "Security.MasterKey.Exec.Arguments": [1]}"#,
        r#"{"Security.MasterKey.Exec": "/k", "Security.MasterKey.Exec.TimeoutInSec": 0}"#,
        r#"{"Security.MasterKey.Exec": "/k", "Security.MasterKey.Exec.TimeoutInSec": -3}"#,
        r#"{"Security.MasterKey.Exec": "/k", "Security.MasterKey.Exec.TimeoutInSec": "soon"}"#,
        r#"{"Security.MasterKey.Exec": 42}"#,
        r#"{"Security.MasterKey.Path": "/k", "Security.MasterKey.AllowInsecurePermissions": "yes"}"#,
    ] {
        assert!(
            matches!(source(bad), Err(SettingsError::InvalidValue { .. })),
            "{bad}: {:?}",
            source(bad)
        );
    }
    let typo = source(r#"{"Security.MasterKey.ExecArguments": "x"}"#).unwrap_err();
    assert!(
        matches!(typo, SettingsError::UnknownSetting { .. }),
        "{typo:?}"
    );
    assert!(
        typo.to_string()
            .contains("Security.MasterKey.ExecArguments")
    );
    assert!(matches!(
        MasterKeySettings::from_json_str("[1, 2]"),
        Err(SettingsError::Json { .. })
    ));
    assert!(matches!(
        MasterKeySettings::from_json_file("/no/such/settings.json"),
        Err(SettingsError::Read { .. })
    ));
}

#[test]
fn serde_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(
        &path,
        r#"{"Security.MasterKey.Exec": "/bin/key", "Security.MasterKey.Exec.Arguments": "a b"}"#,
    )
    .unwrap();
    let from_file = MasterKeySettings::from_json_file(&path).unwrap();
    let via_serde: MasterKeySettings =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let in_code = MasterKeySettings::exec("/bin/key").with_exec_arguments(["a", "b"]);
    assert_eq!(from_file, via_serde);
    assert_eq!(from_file, in_code);
    let err = serde_json::from_str::<MasterKeySettings>(
        r#"{"Security.MasterKey.Exec": "/a", "Security.MasterKey.Path": "/b"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("both"), "{err}");

    std::fs::write(&path, "{ not json").unwrap();
    let err = MasterKeySettings::from_json_file(&path).unwrap_err();
    assert!(
        matches!(err, SettingsError::Json { path: Some(_), .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("settings.json"), "{err}");
}

#[test]
fn settings_build_working_providers() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("master.key");
    write_with_mode(&key_path, &key_bytes(), 0o600);
    let json = format!(
        r#"{{"Security.MasterKey.Path": {}}}"#,
        serde_json::to_string(&key_path).unwrap()
    );
    let provider = MasterKeySettings::from_json_str(&json)
        .unwrap()
        .provider()
        .unwrap();
    let key = DataKey::generate().unwrap();
    let blob = ProtectedKey::protect(&key, &*provider).unwrap();
    let in_code = MasterKeySettings::path(&key_path).provider().unwrap();
    assert_eq!(blob.unprotect(&*in_code).unwrap().id(), key.id());

    let home = MasterKeySource::UnixHomeFile {
        path: Some(dir.path().join("home.key")),
    }
    .provider()
    .unwrap();
    assert!(format!("{home:?}").contains("home.key"));

    #[cfg(unix)]
    {
        let program = script(dir.path(), "key.sh", &format!("echo {KEY_B64}"));
        let exec = MasterKeySettings::exec(&program)
            .with_exec_timeout(Duration::from_secs(5))
            .provider()
            .unwrap();
        assert_eq!(blob.unprotect(&*exec).unwrap().id(), key.id());
    }
}

#[cfg(not(windows))]
#[test]
fn dpapi_source_is_unsupported_off_windows() {
    let err = MasterKeySource::Dpapi.provider().unwrap_err();
    assert!(
        matches!(err, strongbox::keys::ProviderError::Unsupported { .. }),
        "{err:?}"
    );
}

#[test]
fn debug_never_shows_arguments() {
    let settings = MasterKeySettings::from_json_str(
        r#"{"Security.MasterKey.Exec": "/bin/vault-key",
            "Security.MasterKey.Exec.Arguments": "--token s3cr3t-t0ken"}"#,
    )
    .unwrap();
    let text = format!(
        "{settings:?} {settings:#?} {:?}",
        settings.source().unwrap()
    );
    assert!(text.contains("vault-key"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("2 redacted"), "{text}");
    let provider = settings.provider().unwrap();
    assert!(!format!("{provider:?}").contains("s3cr3t"));
}

#[test]
fn letter_case_and_nested_sections_are_honoured_as_ravendb_does() {
    let path = MasterKeySource::File {
        path: "/k".into(),
        allow_insecure_permissions: false,
    };
    for json in [
        r#"{"Security.Masterkey.Path": "/k"}"#,
        r#"{"security.masterkey.path": "/k"}"#,
        r#"{"Security": {"MasterKey": {"Path": "/k"}}}"#,
        r#"{"security": {"masterKey.path": "/k"}}"#,
        r#"{"Security.MasterKey": {"Path": "/k"}, "Security": {"Other": 1}}"#,
    ] {
        assert_eq!(source(json).unwrap(), path, "{json}");
    }
    let nested = source(
        r#"{"Security": {"MasterKey": {"Exec": "/bin/key",
            "exec": {"Arguments": ["a"], "TimeoutInSec": 9}}}}"#,
    )
    .unwrap();
    assert_eq!(
        exec_parts(nested),
        (
            "/bin/key".into(),
            vec!["a".to_string()],
            Duration::from_secs(9)
        )
    );
}

#[test]
fn master_key_settings_never_fall_back_to_the_os_default() {
    for (json, key) in [
        (
            r#"{"Security.MasterKey.Path": "/k", "Security.MasterKey.Path": null}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{"Security.MasterKey.Path": "/k", "security.masterkey.path": ""}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{"Security.MasterKey.Path": "/k", "Security": {"MasterKey": {"Path": "/j"}}}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{"Security": {"MasterKey": {"Exec": "/a"}}, "Security": {"MasterKey": {"Exec": "/a"}}}"#,
            "Security.MasterKey.Exec",
        ),
    ] {
        match source(json) {
            Err(SettingsError::DuplicateSetting { key: got }) => assert_eq!(got, key, "{json}"),
            other => panic!("{json}: {other:?}"),
        }
    }
    for json in [
        r#"{"Security.MasterKey.Path": null}"#,
        r#"{"Security.MasterKey.Path": ""}"#,
        r#"{"Security.MasterKey.Exec": ""}"#,
        r#"{"Security": {"MasterKey": {"Exec": null}}}"#,
        r#"{"Security.MasterKey.Exec": "/k", "Security.MasterKey.Exec.Arguments": ""}"#,
    ] {
        let err = source(json).unwrap_err();
        assert!(
            matches!(err, SettingsError::EmptyValue { .. }),
            "{json}: {err:?}"
        );
        assert!(err.to_string().contains("empty or null"), "{err}");
    }
    for (json, suggestion) in [
        (
            r#"{"Security.MasterKey.Pth": "/k"}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{"Security:MasterKey:Path": "/k"}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{"Security": {"MasterKey": {"Exec": {"Timeout": 3}}}}"#,
            "Security.MasterKey.Exec.TimeoutInSec",
        ),
        (
            r#"{"Security.MasterKey.Paths": "/k"}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{"Security.MasterKey": {"exec.timeout": 3}}"#,
            "Security.MasterKey.Exec.TimeoutInSec",
        ),
        (
            r#"{"Security_MasterKey_Exec": "/k"}"#,
            "Security.MasterKey.Exec",
        ),
        (
            r#"{"Security.Master.Key.Path": "/k"}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{"Security": {"Master": {"Key": {"Path": "/k"}}}}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{" Security.MasterKey.Path": "/k"}"#,
            "Security.MasterKey.Path",
        ),
        (
            r#"{"Security-MasterKey-Exec": "/k"}"#,
            "Security.MasterKey.Exec",
        ),
    ] {
        match source(json) {
            Err(
                err @ SettingsError::UnknownSetting {
                    suggestion: got, ..
                },
            ) => {
                assert_eq!(got, suggestion, "{json}");
                assert!(
                    err.to_string()
                        .contains(&format!("did you mean {suggestion}?")),
                    "{err}"
                );
            }
            other => panic!("{json}: {other:?}"),
        }
    }
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(&path, b"\xEF\xBB\xBF{\"Security.MasterKey.Path\": \"/k\"}").unwrap();
    let settings = MasterKeySettings::from_json_file(&path).unwrap();
    assert_eq!(settings, MasterKeySettings::path("/k"));
    let text = "\u{feff}{\"Security.MasterKey.Path\": \"/k\"}";
    assert_eq!(MasterKeySettings::from_json_str(text).unwrap(), settings);
    assert_eq!(
        serde_json::from_str::<MasterKeySettings>(&text[3..]).unwrap(),
        settings
    );
}

#[test]
fn json_errors_never_quote_the_content() {
    let secret = "c2VjcmV0LWtleS1tYXRlcmlhbC0zMi1ieXRlcyEhISE=";
    for text in [
        format!("\"{secret}\""),
        secret.to_string(),
        format!("[\"{secret}\"]"),
        format!("{{\"a\": \"{secret}"),
    ] {
        let err = MasterKeySettings::from_json_str(&text).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(matches!(err, SettingsError::Json { .. }), "{shown}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
}

/// `{"<name>":{"a":0,"a":0,...}}` with `values` members in one section named `name`.
fn wide_section(name: &str, values: usize) -> String {
    let members = vec![r#""a":0"#; values].join(",");
    format!(r#"{{"{name}":{{{members}}}}}"#)
}

#[test]
fn a_long_section_name_over_many_values_is_read_in_bounded_memory() {
    // Flattening every value's full name first would build 150,000 x 25,000 bytes (3.75 GB).
    let long = "K".repeat(150_000);
    let unrelated = wide_section(&long, 25_000);
    assert_eq!(source(&unrelated).unwrap(), MasterKeySource::os_default());

    let misspelt = wide_section(&format!("Security.MasterKey.{long}"), 25_000);
    match source(&misspelt) {
        Err(SettingsError::UnknownSetting { key, suggestion }) => {
            assert!(key.starts_with("Security.MasterKey.KKK"), "{key}");
            assert!(
                key.len() < 120,
                "the error shows {} bytes of the name",
                key.len()
            );
            assert!(suggestion.starts_with("Security.MasterKey."));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn kms_uri_alone_or_refused_beside_another_source() {
    let uri = "vault-transit://vault.example:8200/transit/db-keys";
    let nested = format!(r#"{{"security": {{"masterkey": {{"kms": "{uri}"}}}}}}"#);
    match source(&nested).unwrap() {
        MasterKeySource::VaultTransit(parsed) => {
            assert_eq!(parsed.to_string(), uri);
            assert_eq!((parsed.mount(), parsed.key_name()), ("transit", "db-keys"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        source(&format!(r#"{{"Security.MasterKey.Kms": "{uri}"}}"#)).unwrap(),
        MasterKeySettings::kms(uri).source().unwrap()
    );
    // Building the provider sends nothing (the host does not exist).
    #[cfg(feature = "vault-transit")]
    {
        let provider = MasterKeySettings::kms(uri).provider().unwrap();
        assert!(format!("{provider:?}").contains(uri));
    }
    #[cfg(not(feature = "vault-transit"))]
    {
        let err = MasterKeySettings::kms(uri).provider().unwrap_err();
        assert!(err.to_string().contains("feature `vault-transit`"), "{err}");
    }
    for other in [
        r#""Security.MasterKey.Path": "/k""#,
        r#""Security.MasterKey.Exec": "/p""#,
    ] {
        let both = format!(r#"{{"Security.MasterKey.Kms": "{uri}", {other}}}"#);
        let err = source(&both).unwrap_err();
        assert!(matches!(err, SettingsError::KmsAndOther { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("both Security.MasterKey.Kms and"),
            "{err}"
        );
    }
    for (bad, reason) in [
        (
            "gcp-kms://projects/p/keyRings/r/cryptoKeys/k",
            "unknown KMS URI scheme",
        ),
        (
            "aws-kms://alias/db?aws_secret_access_key=SECRET",
            "unknown parameter",
        ),
        (
            "vault-transit://h:1/t/k?token=s.SECRET",
            "never goes in the URI",
        ),
        (
            "vault-transit://vault.example:8200/t/k?tls=false",
            "loopback",
        ),
    ] {
        let json = format!(r#"{{"Security.MasterKey.Kms": "{bad}"}}"#);
        let err = MasterKeySettings::from_json_str(&json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(reason), "{bad}: {err}");
        assert!(!err.contains("SECRET"), "{err}");
    }
}

#[test]
fn an_aws_kms_uri_selects_the_aws_kms_provider() {
    let uri = "aws-kms://alias/db-keys?region=eu-west-1";
    let json = format!(r#"{{"Security.MasterKey.Kms": "{uri}"}}"#);
    match source(&json).unwrap() {
        MasterKeySource::AwsKms(parsed) => {
            assert_eq!(parsed.to_string(), uri);
            assert_eq!(
                (parsed.key(), parsed.region()),
                ("alias/db-keys", Some("eu-west-1"))
            );
        }
        other => panic!("{other:?}"),
    }
    // Building the provider sends nothing.
    #[cfg(feature = "aws-kms")]
    {
        let provider = MasterKeySettings::kms(uri).provider().unwrap();
        assert!(format!("{provider:?}").contains(uri));
    }
    #[cfg(not(feature = "aws-kms"))]
    {
        let err = MasterKeySettings::kms(uri).provider().unwrap_err();
        assert!(err.to_string().contains("feature `aws-kms`"), "{err}");
    }
}
