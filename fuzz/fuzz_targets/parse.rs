//! The `.ir` front end on arbitrary bytes: lexer, parser, diagnostics, the
//! formatter, elaboration and the print/parse round trip (`dlc_fuzz::target::parse_bytes`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dlc_fuzz::target::parse_bytes(data));
