//! The recipient-slots parser: `parse_slots` over arbitrary bytes (the value of header
//! extension 0x0003), then `slot_stanzas` on every slot it accepts.
//!
//! Checked: no panic, no over-allocation; an accepted list holds 1 to 16 slots that, framed
//! again (count byte, 4-byte big-endian lengths), are exactly the input; every slot starts with
//! the age header line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox::backup::{MAX_RECIPIENT_SLOTS, parse_slots, slot_stanzas};

fuzz_target!(|data: &[u8]| {
    let Some(slots) = parse_slots(data) else {
        return;
    };
    assert!((1..=MAX_RECIPIENT_SLOTS).contains(&slots.len()));
    let mut framed = vec![slots.len() as u8];
    for slot in &slots {
        assert!(slot.starts_with(b"age-encryption.org/v1\n"), "not an age file");
        framed.extend_from_slice(&(slot.len() as u32).to_be_bytes());
        framed.extend_from_slice(slot);
        let _ = slot_stanzas(slot);
    }
    assert_eq!(framed, data, "an accepted list is its own encoding");
});
