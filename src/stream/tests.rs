//! Unit tests that need crate internals (fixed salts): the test vectors.
