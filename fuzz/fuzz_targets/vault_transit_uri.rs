//! The `vault-transit://` URI parser: `VaultTransitUri::parse` over arbitrary text.
//!
//! Checked: no panic, no over-allocation; a parsed URI prints a canonical form that parses back
//! to the same URI and prints identically; a refusal is `ProviderError::KmsUri`, whose reason is
//! static text (it never quotes the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox::keys::{ProviderError, VaultTransitUri};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match VaultTransitUri::parse(text) {
        Ok(uri) => {
            let canonical = uri.to_string();
            let again = VaultTransitUri::parse(&canonical).expect("the canonical form parses");
            assert_eq!(again, uri);
            assert_eq!(again.to_string(), canonical);
            assert!(uri.uses_tls() || uri.ca_file().is_none());
            let _ = format!("{uri:?}");
        }
        // A refusal's reason is static text: it cannot quote the input.
        Err(err) => assert!(
            matches!(err, ProviderError::KmsUri { .. }),
            "not a URI error: {err:?}"
        ),
    }
});
