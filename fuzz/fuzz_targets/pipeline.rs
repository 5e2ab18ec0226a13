//! The whole compile-and-compare pipeline on generated models: the fuzz input
//! picks a seed, the op families and the op count; the model runs on the
//! interpreter and every JIT configuration (`dlc_fuzz::target::pipeline_generated`).
#![no_main]

use arbitrary::Arbitrary;

/// What the fuzzer mutates.
#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    families: u32,
    ops: u8,
}

libfuzzer_sys::fuzz_target!(|i: Input| {
    dlc_fuzz::target::pipeline_generated(i.seed, i.families, i.ops)
});
