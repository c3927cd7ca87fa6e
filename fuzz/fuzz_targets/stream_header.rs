//! `Header::read_from` on arbitrary bytes: never panics, never reads past the header, and a
//! parsed header re-encodes to exactly the bytes it was parsed from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox::stream::Header;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    if let Ok(header) = Header::read_from(&mut input) {
        let consumed = data.len() - input.len();
        assert_eq!(consumed, header.encoded_len());
        assert_eq!(header.as_bytes(), &data[..consumed]);
        let _ = format!("{header:?}");
    }
});
