//! The settings parser: `MasterKeySettings::from_json_str` over arbitrary text, then `source()`
//! and `provider()` (which run and read nothing until first use), and the serde path.
//!
//! Checked: no panic (deep nesting, huge numbers, odd strings), no over-allocation, and the
//! serde `Deserialize` impl agrees with `from_json_str`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox::MasterKeySettings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = MasterKeySettings::from_json_str(text);
    // `from_json_str` skips a byte-order mark; serde_json itself does not.
    let via_serde =
        serde_json::from_str::<MasterKeySettings>(text.strip_prefix('\u{feff}').unwrap_or(text));
    assert_eq!(
        parsed.is_ok(),
        via_serde.is_ok(),
        "serde and from_json_str disagree"
    );
    match parsed {
        Ok(settings) => {
            assert_eq!(Some(&settings), via_serde.as_ref().ok());
            let source = settings.source().expect("parsed settings have a source");
            let _ = format!("{settings:?} {source:?}");
            let _ = settings.provider().map(|p| format!("{p:?}"));
        }
        Err(err) => {
            let _ = format!("{err} {err:?}");
        }
    }
});
