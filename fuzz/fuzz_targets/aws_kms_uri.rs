//! The `aws-kms://` URI parser: `AwsKmsUri::parse` over arbitrary text.
//!
//! Checked: no panic, no over-allocation; a parsed URI prints a canonical form that parses back
//! to the same URI and prints identically; an `http://` endpoint is a loopback one; a refusal is
//! `ProviderError::KmsUri`, whose reason is static text (it never quotes the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox::keys::{AwsKmsUri, ProviderError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match AwsKmsUri::parse(text) {
        Ok(uri) => {
            let canonical = uri.to_string();
            let again = AwsKmsUri::parse(&canonical).expect("the canonical form parses");
            assert_eq!(again, uri);
            assert_eq!(again.to_string(), canonical);
            if let Some(endpoint) = uri.endpoint() {
                assert!(endpoint.starts_with("https://") || endpoint.starts_with("http://"));
            }
            let _ = format!("{uri:?}");
        }
        // A refusal's reason is static text: it cannot quote the input.
        Err(err) => assert!(
            matches!(err, ProviderError::KmsUri { .. }),
            "not a URI error: {err:?}"
        ),
    }
});
