//! The whole compile-and-compare pipeline on models as text: the fuzz input is
//! `.ir` source (so `ir/` and `tests/regressions/` seed the corpus as they are);
//! a model that elaborates runs with values drawn from a fixed seed on the
//! interpreter and every JIT configuration (`dlc_fuzz::target::pipeline_text`).
#![no_main]

/// The value seed (values also depend on each input's name).
const SEED: u64 = 7;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        dlc_fuzz::target::pipeline_text(source, SEED)
    }
});
