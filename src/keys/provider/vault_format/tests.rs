use super::{TransitSealed, VaultTransitUri, split_transit_ciphertext};

#[test]
fn uris_that_parse_and_their_canonical_form() {
    for (text, canonical) in [
        (
            "vault-transit://vault.example:8200/transit/db-keys",
            "vault-transit://vault.example:8200/transit/db-keys",
        ),
        (
            "vault-transit://127.0.0.1:8200/team/transit/k.1?timeout=30&tls=false",
            "vault-transit://127.0.0.1:8200/team/transit/k.1?tls=false&timeout=30",
        ),
        (
            "vault-transit://[::1]:1/t/k?tls=false&token_file=/run/t&timeout=10",
            "vault-transit://[::1]:1/t/k?tls=false&token_file=/run/t",
        ),
        (
            "vault-transit://LOCALHOST:9/t/k?tls=false",
            "vault-transit://LOCALHOST:9/t/k?tls=false",
        ),
        (
            "vault-transit://v:8200/t/k?ca_file=/etc/ca.pem&tls=true",
            "vault-transit://v:8200/t/k?ca_file=/etc/ca.pem",
        ),
    ] {
        let uri = VaultTransitUri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(uri.to_string(), canonical);
        assert_eq!(VaultTransitUri::parse(canonical).unwrap(), uri);
    }
    let uri = VaultTransitUri::parse("vault-transit://[::1]:8200/a/b/c?tls=false").unwrap();
    assert_eq!((uri.host(), uri.port()), ("[::1]", 8200));
    assert_eq!((uri.mount(), uri.key_name()), ("a/b", "c"));
    assert_eq!(uri.url("encrypt"), "http://[::1]:8200/v1/a/b/encrypt/c");
}

#[test]
fn uris_refused_without_quoting_them() {
    for (text, reason) in [
        ("vault-transit://h:8200/k", "the path must be /MOUNT/KEY"),
        ("vault-transit://h/t/k", "HOST:PORT is required"),
        ("vault-transit://h:0/t/k", "the port must be"),
        ("vault-transit://h:+1/t/k", "the port must be"),
        ("vault-transit://h:70000/t/k", "the port must be"),
        ("vault-transit://s.SECRETTOKEN@h:1/t/k", "user information"),
        (
            "vault-transit://h:1/t/k?token=s.SECRETTOKEN",
            "never goes in the URI",
        ),
        (
            "vault-transit://h:1/t/k?s.SECRETTOKEN=1",
            "unknown parameter",
        ),
        ("vault-transit://h:1/t/k?tls=false", "loopback"),
        ("vault-transit://10.0.0.1:1/t/k?tls=false", "loopback"),
        (
            "vault-transit://localhost:1/t/k?tls=false&ca_file=/c",
            "needs TLS",
        ),
        ("vault-transit://h:1/t/k?tls=yes", "tls must be"),
        ("vault-transit://h:1/t/k?timeout=0", "timeout must be"),
        ("vault-transit://h:1/t/k?timeout=301", "timeout must be"),
        ("vault-transit://h:1/t/k?tls=true&tls=true", "twice"),
        ("vault-transit://h:1/t/k?token_file=", "empty value"),
        ("vault-transit://h:1/t/k#f", "fragment"),
        ("vault-transit://h:1/t/../k", "segments"),
        ("vault-transit://h:1/t//k", "segments"),
        ("vault-transit://h:1/t/k%20", "segments"),
        ("vault-transit://h_x:1/t/k", "the host must be"),
        ("vault-transit://[::g]:1/t/k", "the host must be"),
        ("aws-kms://alias/k", "vault-transit://"),
    ] {
        let message = VaultTransitUri::parse(text).unwrap_err().to_string();
        assert!(message.contains(reason), "{text}: {message}");
        assert!(!message.contains("SECRETTOKEN"), "{message}");
    }
    let long = format!("vault-transit://h:1/t/{}", "k".repeat(2048));
    assert!(VaultTransitUri::parse(&long).is_err());
}

/// The scheme-3 sealed secret of `docs/KEYBLOB.md` ("Scheme 3"), byte by byte.
#[test]
fn the_sealed_secret_layout_of_the_spec() {
    let transit =
        "vault:v2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7";
    let (version, ciphertext) = split_transit_ciphertext(transit).unwrap();
    assert_eq!((version, ciphertext.len()), (2, 60));
    let sealed = TransitSealed {
        mount: "transit",
        key: "db",
        version,
        ciphertext: &ciphertext,
    };
    let bytes = sealed.to_bytes().unwrap();
    let expected = [
        "07",
        "7472616e736974",
        "02",
        "6462",
        "00000002",
        "003c",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b",
    ]
    .concat();
    assert_eq!(crate::test_hex::hex(&bytes), expected);
    let parsed = TransitSealed::parse(&bytes).unwrap();
    assert_eq!(parsed, sealed);
    assert_eq!(parsed.transit_ciphertext(), transit);

    for bad in [&bytes[..bytes.len() - 1], &bytes[..10], &[0u8; 12][..]] {
        assert!(TransitSealed::parse(bad).is_err());
    }
    let mut zero_version = bytes.clone();
    zero_version[12] = 0;
    zero_version[13] = 0;
    zero_version[14] = 0;
    zero_version[15] = 0;
    assert!(TransitSealed::parse(&zero_version).is_err());
    for bad in [
        "vault:v0:AAAA",
        "vault:vx:AAAA",
        "vault:v1:",
        "vault:v1:AAA",
        "v1:AAAA",
    ] {
        assert_eq!(split_transit_ciphertext(bad), None, "{bad}");
    }
}
