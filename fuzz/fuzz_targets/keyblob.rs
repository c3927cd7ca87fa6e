//! The protected-key-blob parser: `ProtectedKey::from_bytes` over arbitrary bytes, then
//! `unprotect` with a fixed master key (the test vectors' master key, so seeds made from
//! tests/vectors/keyblob decrypt).
//!
//! Checked: no panic, no over-allocation; a parsed blob keeps its bytes and reparses
//! identically; a blob that unprotects carries the provider's fingerprint and the key id of the
//! key it yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox::key::Fingerprint;
use strongbox::keys::{Protection, ProviderError};
use strongbox::{MasterKey, MasterKeyProvider, ProtectedKey};

/// The master key of tests/vectors/keyblob.
const MASTER: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

#[derive(Debug)]
struct Fixed(MasterKey);

impl MasterKeyProvider for Fixed {
    fn protection(&self) -> Result<Protection<'_>, ProviderError> {
        Ok(Protection::MasterKey(&self.0))
    }
}

fuzz_target!(|data: &[u8]| {
    let provider = Fixed(MasterKey::from_bytes(&MASTER).expect("32 bytes"));
    let blob = match ProtectedKey::from_bytes(data) {
        Ok(blob) => blob,
        Err(err) => {
            let _ = format!("{err} {err:?}");
            return;
        }
    };
    assert_eq!(blob.as_bytes(), data, "a parsed blob keeps its bytes");
    let again = ProtectedKey::from_bytes(&blob.to_bytes()).expect("reparse");
    assert_eq!(again.key_id(), blob.key_id());
    assert_eq!(again.scheme(), blob.scheme());
    assert_eq!(again.fingerprint(), blob.fingerprint());
    let _ = format!("{blob:?}");
    let _ = blob.is_protected_by(&provider);
    match blob.unprotect(&provider) {
        Ok(key) => {
            let expected: Option<Fingerprint> = Some(provider.0.fingerprint());
            assert_eq!(
                blob.fingerprint(),
                expected,
                "opened with a foreign fingerprint"
            );
            assert_eq!(key.id(), blob.key_id(), "the key id is not the key's");
            blob.unprotect_expecting(&provider, key.id())
                .expect("expecting its own id");
        }
        Err(err) => {
            let _ = format!("{err} {err:?}");
        }
    }
});
