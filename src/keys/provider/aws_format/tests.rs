use super::{AwsKmsUri, AwsSealed};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

#[test]
fn uris_that_parse_and_their_canonical_form() {
    for (text, canonical, region) in [
        (
            "aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab",
            "aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab",
            None,
        ),
        (
            "aws-kms://alias/db-keys?timeout=10&region=eu-west-1",
            "aws-kms://alias/db-keys?region=eu-west-1",
            Some("eu-west-1"),
        ),
        (
            &format!("aws-kms://{ARN}"),
            &format!("aws-kms://{ARN}"),
            Some("us-east-1"),
        ),
        (
            &format!("aws-kms://{ARN}?endpoint=http://127.0.0.1:4566/&region=us-east-1"),
            &format!("aws-kms://{ARN}?region=us-east-1&endpoint=http://127.0.0.1:4566"),
            Some("us-east-1"),
        ),
        (
            "aws-kms://arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/a/b_c?timeout=30",
            "aws-kms://arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/a/b_c?timeout=30",
            Some("us-gov-west-1"),
        ),
        (
            "aws-kms://mrk-1234abcd?endpoint=https://kms.example:8443&region=x-1",
            "aws-kms://mrk-1234abcd?region=x-1&endpoint=https://kms.example:8443",
            Some("x-1"),
        ),
        (
            "aws-kms://k?endpoint=http://[::1]",
            "aws-kms://k?endpoint=http://[::1]",
            None,
        ),
    ] {
        let uri = AwsKmsUri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(uri.to_string(), canonical);
        assert_eq!(uri.region(), region, "{text}");
        assert_eq!(AwsKmsUri::parse(canonical).unwrap(), uri);
    }
}

#[test]
fn uris_refused_without_quoting_them() {
    for (text, reason) in [
        ("aws-kms://", "the key must be"),
        ("aws-kms://key/abc", "the key must be"),
        ("aws-kms://alias/", "the key must be"),
        (
            "aws-kms://arn:aws:s3:us-east-1:111122223333:key/k",
            "the key must be",
        ),
        (
            "aws-kms://arn:aws:kms:us-east-1:1111:key/k",
            "the key must be",
        ),
        (
            "aws-kms://arn:aws:kms:us-east-1:111122223333:k",
            "the key must be",
        ),
        ("aws-kms://SECRETKEY@alias/k", "the key must be"),
        (
            "aws-kms://alias/k?aws_secret_access_key=SECRETKEY",
            "unknown parameter",
        ),
        ("aws-kms://alias/k?region=US-EAST-1", "the region must be"),
        (
            &format!("aws-kms://{ARN}?region=eu-west-1"),
            "differs from the key ARN",
        ),
        ("aws-kms://alias/k?endpoint=http://kms.example", "loopback"),
        ("aws-kms://alias/k?endpoint=http://10.0.0.1:1", "loopback"),
        (
            "aws-kms://alias/k?endpoint=ftp://h",
            "must start with https://",
        ),
        (
            "aws-kms://alias/k?endpoint=https://SECRET:x@h",
            "no user information",
        ),
        (
            "aws-kms://alias/k?endpoint=https://h/p",
            "no user information",
        ),
        ("aws-kms://alias/k?endpoint=https://h:0", "port must be"),
        ("aws-kms://alias/k?endpoint=https://h_x", "host must be"),
        ("aws-kms://alias/k?timeout=0", "timeout must be"),
        ("aws-kms://alias/k?timeout=301", "timeout must be"),
        ("aws-kms://alias/k?region=a&region=a", "twice"),
        ("aws-kms://alias/k?region=", "empty value"),
        ("aws-kms://alias/k?region", "NAME=VALUE"),
        ("aws-kms://alias/k#f", "fragment"),
        ("vault-transit://h:1/t/k", "aws-kms://"),
    ] {
        let message = AwsKmsUri::parse(text).unwrap_err().to_string();
        assert!(message.contains(reason), "{text}: {message}");
        assert!(!message.contains("SECRET"), "{message}");
    }
    let long = format!("aws-kms://alias/{}", "k".repeat(2048));
    assert!(AwsKmsUri::parse(&long).is_err());
}

#[test]
fn a_uri_recognizes_the_arns_it_may_name() {
    let other = ARN.replace("1234abcd-12ab", "9999abcd-12ab");
    let cases = [
        (format!("aws-kms://{ARN}"), true, false),
        (
            "aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab".to_string(),
            true,
            false,
        ),
        ("aws-kms://alias/db".to_string(), true, true),
        (
            format!("aws-kms://{}", ARN.replace("us-east-1", "eu-west-1")),
            false,
            false,
        ),
    ];
    for (uri, mine, theirs) in cases {
        let uri = AwsKmsUri::parse(&uri).unwrap();
        assert_eq!(uri.may_be(ARN), mine, "{uri}");
        assert_eq!(uri.may_be(&other), theirs, "{uri}");
    }
}

/// The scheme-4 sealed secret of `docs/KEYBLOB.md` ("Scheme 4"), byte by byte.
#[test]
fn the_sealed_secret_layout_of_the_spec() {
    let ciphertext: Vec<u8> = (0u8..40).collect();
    let sealed = AwsSealed {
        key_arn: ARN,
        ciphertext: &ciphertext,
    };
    let bytes = sealed.to_bytes().unwrap();
    let expected = [
        "4b",
        &crate::test_hex::hex(ARN.as_bytes()),
        "0028",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "2021222324252627",
    ]
    .concat();
    assert_eq!(crate::test_hex::hex(&bytes), expected);
    assert_eq!(ARN.len(), 0x4b);
    assert_eq!(AwsSealed::parse(&bytes).unwrap(), sealed);

    for bad in [
        &bytes[..bytes.len() - 1],
        &bytes[..10],
        &[0u8; 3][..],
        &[][..],
    ] {
        assert!(AwsSealed::parse(bad).is_err());
    }
    let mut not_a_key = bytes.clone();
    not_a_key[1 + 35..1 + 39].copy_from_slice(b"kex/");
    assert!(AwsSealed::parse(&not_a_key).is_err(), "not a key ARN");
    let mut zero = bytes.clone();
    zero[1 + ARN.len()..3 + ARN.len()].copy_from_slice(&[0, 0]);
    assert!(AwsSealed::parse(&zero[..3 + ARN.len()]).is_err());
    let too_long = AwsSealed {
        key_arn: ARN,
        ciphertext: &[0; 6145],
    };
    assert_eq!(too_long.to_bytes(), None);
}
