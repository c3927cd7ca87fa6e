//! The object URL parser: `ObjectUrl::parse` over arbitrary text.
//!
//! Checked: no panic; a parsed URL prints a form that parses back to the same URL and prints
//! identically, without a query, fragment or user information; `is_object_url` holds for every
//! parsed URL; a refusal is `ObjectError::InvalidUrl`, which shows the text without its query, fragment
//! or user information.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox::object::{ObjectError, ObjectUrl, is_object_url};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ObjectUrl::parse(text) {
        Ok(url) => {
            let shown = url.to_string();
            let again = ObjectUrl::parse(&shown).expect("the displayed form parses");
            assert_eq!(again, url);
            assert_eq!(again.to_string(), shown);
            assert!(is_object_url(&shown) && is_object_url(text));
            assert!(!shown.contains(['?', '#']));
            assert!(!url.bucket().contains('@'));
            if let Some(name) = url.file_name() {
                assert_eq!(url.key().rsplit('/').next(), Some(name));
            }
            let _ = format!("{url:?}");
        }
        // The refused text is shown without its query, fragment or user information.
        Err(ObjectError::InvalidUrl { url, .. }) => {
            assert!(!url.contains(['?', '#']), "{url}");
            let authority = url.split_once("://").map_or("", |(_, rest)| rest);
            let authority = authority.split('/').next().unwrap_or_default();
            assert!(!authority.contains('@') || authority.starts_with("***@"), "{url}");
        }
        Err(err) => panic!("not a URL error: {err:?}"),
    }
});
