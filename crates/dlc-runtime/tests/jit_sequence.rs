//! The JIT's recurrent, grid-LSTM and attention kernels against the interpreter:
//! random graphs per family (also in checked mode), hand-picked shapes (batch 1,
//! hidden sizes that are not multiples of four, one step, long sequences), the
//! PyTorch reference files, and the promise that a sequence compiles to a loop
//! (code size and compile time independent of the sequence length).

mod common;

#[path = "../../../tests/common/reference.rs"]
#[allow(unused_imports)]
mod reference;

use std::path::Path;

use common::{check, check_opts};
use dlc_runtime::{CompiledModel, RuntimeOptions, Threading};
use dlc_tensor::{Value, allowance_ratio};
use dlc_testgen::{Case, Family, GenConfig};
use proptest::prelude::*;

macro_rules! family_test {
    ($name:ident, $family:expr, $cases:expr, $checked:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: $cases, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $name(case in dlc_testgen::arb_case(GenConfig::only($family))) {
                check(&case, $checked)?;
            }
        }
    };
}

family_test!(recurrent, Family::Recurrent, 256, false);
family_test!(grid_lstm, Family::GridLstm, 256, false);
family_test!(attention, Family::Attention, 256, false);
family_test!(recurrent_checked, Family::Recurrent, 64, true);
family_test!(grid_lstm_checked, Family::GridLstm, 64, true);
family_test!(attention_checked, Family::Attention, 64, true);

/// A case from IR text, with the generator's input and parameter values.
fn case(src: &str) -> Case {
    let graph = dlc_ir::syntax::parse_graph(src, &Default::default())
        .unwrap_or_else(|e| panic!("{e:?}\n{src}"));
    let (inputs, params) = dlc_testgen::random_values(&graph, 7);
    Case {
        seed: 7,
        ops: 1,
        graph,
        inputs,
        params,
    }
}

/// Checks a case unchecked and in checked mode, and on the portable tier
/// (Cranelift products instead of the native AVX2 ones).
fn check_both(src: &str) {
    let c = case(src);
    for checked in [false, true] {
        if let Err(e) = check(&c, checked) {
            panic!("checked={checked}: {e}");
        }
    }
    let mut portable = RuntimeOptions::default();
    portable.codegen.portable = true;
    if let Err(e) = check_opts(&c, &portable) {
        panic!("portable: {e}");
    }
}

/// A recurrent layer (`rnn`, `lstm`, `gru` or a `_cell`) of the given sizes.
fn recurrent_src(op: &str, t: usize, b: usize, i: usize, h: usize) -> String {
    let gates = match op.trim_end_matches("_cell") {
        "lstm" => 4,
        "gru" => 3,
        _ => 1,
    };
    let cell = op.ends_with("_cell");
    let lstm = gates == 4;
    let a = 1.0 / (h as f64).sqrt();
    let x = if cell {
        format!("f32[{b}, {i}]")
    } else {
        format!("f32[{t}, {b}, {i}]")
    };
    let c0 = if lstm { "c0, " } else { "" };
    let outs = match (cell, lstm) {
        (true, true) => "h1, c1",
        (true, false) => "h1",
        (false, true) => "ys, hn, cn",
        (false, false) => "ys, hn",
    };
    format!(
        "model m {{\n input x: {x}\n input h0: f32[{b}, {h}]\n{}\
         param w_ih: f32[{g}, {i}] = uniform(-{a}, {a})\n param w_hh: f32[{g}, {h}] = uniform(-{a}, {a})\n\
         param b_ih: f32[{g}] = uniform(-{a}, {a})\n param b_hh: f32[{g}] = uniform(-{a}, {a})\n\
         {outs} = {op}(x, h0, {c0}w_ih, w_hh, b_ih, b_hh)\n output {outs}\n}}\n",
        if lstm {
            format!(" input c0: f32[{b}, {h}]\n")
        } else {
            String::new()
        },
        g = gates * h,
    )
}

#[test]
fn recurrent_hand_shapes() {
    for op in ["rnn", "lstm", "gru"] {
        for (t, b, i, h) in [
            (1, 1, 5, 7),
            (3, 1, 4, 13),
            (5, 2, 3, 8),
            (2, 3, 9, 1),
            (4, 1, 1, 16),
        ] {
            check_both(&recurrent_src(op, t, b, i, h));
        }
        for (b, i, h) in [(1, 6, 7), (3, 5, 13), (2, 4, 4)] {
            check_both(&recurrent_src(&format!("{op}_cell"), 1, b, i, h));
        }
    }
}

#[test]
fn recurrent_long_sequence() {
    for op in ["rnn", "lstm", "gru"] {
        check_both(&recurrent_src(op, 300, 2, 6, 13));
    }
}

#[test]
fn grid_lstm_hand_shapes() {
    for (hg, wg, b, f, h) in [
        (1, 1, 1, 1, 1),
        (2, 3, 1, 5, 7),
        (3, 2, 2, 4, 13),
        (4, 4, 3, 3, 8),
    ] {
        let k = f + 2 * h;
        let a = 1.0 / (k as f64).sqrt();
        check_both(&format!(
            "model m {{\n input x: f32[{hg}, {wg}, {b}, {f}]\n\
             param w1: f32[{k}, {g}] = uniform(-{a}, {a})\n param b1: f32[{g}] = uniform(-{a}, {a})\n\
             param w2: f32[{k}, {g}] = uniform(-{a}, {a})\n param b2: f32[{g}] = uniform(-{a}, {a})\n\
             y, hv, mv, hh, mh = grid_lstm(x, w1, b1, w2, b2)\n output y, hv, mv, hh, mh\n}}\n",
            g = 4 * h
        ));
    }
}

#[test]
fn attention_hand_shapes() {
    // L, S, E, Ev: lengths around the query block (32), the key block (64)
    // and the native kernel's 6-row / 16-, 8- and masked-column tiles, more
    // and fewer keys than queries, widths around the portable 32-column strips;
    // both masks.
    for (l, s, e, ev) in [
        (1, 1, 1, 1),
        (7, 13, 5, 3),
        (65, 130, 16, 40),
        (70, 64, 33, 37),
        (1, 7, 64, 64),
        (33, 100, 13, 64),
        (100, 33, 64, 13),
        (100, 100, 1, 7),
    ] {
        for causal in [false, true] {
            check_both(&format!(
                "model m {{\n input q: f32[2, {l}, {e}]\n input k: f32[2, {s}, {e}]\n input v: f32[2, {s}, {ev}]\n\
                 y = attention(q, k, v, causal={causal})\n output y\n}}\n"
            ));
        }
    }
    for (l, s, n, e, heads) in [(5, 5, 2, 8, 2), (6, 9, 3, 12, 3), (4, 4, 1, 7, 1)] {
        for causal in [false, true] {
            let a = 1.0 / (e as f64).sqrt();
            let params = format!(
                " param in_w: f32[{}, {e}] = uniform(-{a}, {a})\n param in_b: f32[{}] = uniform(-{a}, {a})\n\
                 param out_w: f32[{e}, {e}] = uniform(-{a}, {a})\n param out_b: f32[{e}] = uniform(-{a}, {a})\n",
                3 * e,
                3 * e
            );
            // Cross attention (three projections) and self attention (one fused projection).
            check_both(&format!(
                "model m {{\n input q: f32[{l}, {n}, {e}]\n input k: f32[{s}, {n}, {e}]\n input v: f32[{s}, {n}, {e}]\n{params}\
                 y = multihead_attention(q, k, v, in_w, in_b, out_w, out_b, heads={heads}, causal={causal})\n output y\n}}\n"
            ));
            check_both(&format!(
                "model m {{\n input x: f32[{l}, {n}, {e}]\n{params}\
                 y = multihead_attention(x, x, x, in_w, in_b, out_w, out_b, heads={heads}, causal={causal})\n output y\n}}\n"
            ));
        }
    }
}

/// Splitting a kernel's parallel loop over threads (batch rows of the
/// recurrences, `(batch, head)` of attention) gives bit-identical results.
#[test]
fn threads_split_rows_identically() {
    let grid = "model m {\n input x: f32[3, 2, 5, 4]\n param w1: f32[18, 28] = uniform(-0.3, 0.3)\n\
                param b1: f32[28] = uniform(-0.3, 0.3)\n param w2: f32[18, 28] = uniform(-0.3, 0.3)\n\
                param b2: f32[28] = uniform(-0.3, 0.3)\n y, hv, mv, hh, mh = grid_lstm(x, w1, b1, w2, b2)\n\
                output y, hv, mv, hh, mh\n}\n";
    let attn = "model m {\n input q: f32[5, 9, 8]\n input k: f32[5, 11, 8]\n input v: f32[5, 11, 6]\n\
                y = attention(q, k, v, causal=true)\n output y\n}\n";
    let mha = "model m {\n input x: f32[6, 3, 8]\n param in_w: f32[24, 8] = uniform(-0.3, 0.3)\n\
               param in_b: f32[24] = uniform(-0.3, 0.3)\n param out_w: f32[8, 8] = uniform(-0.3, 0.3)\n\
               param out_b: f32[8] = uniform(-0.3, 0.3)\n\
               y = multihead_attention(x, x, x, in_w, in_b, out_w, out_b, heads=2)\n output y\n}\n";
    let sources = [
        recurrent_src("lstm", 6, 5, 7, 13),
        recurrent_src("gru", 6, 5, 7, 9),
        recurrent_src("rnn_cell", 1, 6, 7, 5),
        grid.to_string(),
        attn.to_string(),
        mha.to_string(),
    ];
    for src in &sources {
        let c = case(src);
        let run = |threading: Threading| {
            let opts = RuntimeOptions {
                threading,
                ..RuntimeOptions::default()
            };
            let model = CompiledModel::new(&c.graph, &c.params, &opts).unwrap();
            model.run(&c.inputs).unwrap()
        };
        let one = run(Threading::single());
        let two = run(Threading {
            threads: 2,
            min_split_us: 0.0,
        });
        for (name, v) in &one {
            assert_eq!(v, &two[name], "`{name}` differs with two threads\n{src}");
        }
    }
}

/// The reference files of the sequence ops through the JIT; prints the worst
/// allowance ratio (`|got - ref| <= 1e-5 + 1e-4 |ref|` is ratio 1) per file.
#[test]
fn reference_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference");
    let mut worst_all = 0.0f32;
    for stem in [
        "rnn_tanh_sequence",
        "lstm_cell",
        "lstm_sequence",
        "gru_cell",
        "gru_sequence",
        "grid_lstm2d",
        "sdpa_1_no_mask",
        "sdpa_2_causal",
        "mha_1_cross",
        "mha_2_self_causal",
    ] {
        let case = reference::load(&dir.join(format!("{stem}.npz")))
            .unwrap_or_else(|s| panic!("{}: {}", s.file, s.reason));
        let model = CompiledModel::new(&case.graph, &case.params, &RuntimeOptions::default())
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let got = model.run(&case.inputs).unwrap();
        let mut worst = 0.0f32;
        for (name, want) in &case.expected {
            let (Value::Float(g), Value::Float(w)) = (&got[name], want) else {
                panic!("{stem}: `{name}` is not a float output");
            };
            let r = allowance_ratio(g, w, 1e-4, 1e-5)
                .unwrap_or_else(|| panic!("{stem}: `{name}` shape or NaN mismatch"));
            worst = worst.max(r);
        }
        eprintln!("{stem:<20} worst ratio {worst:.4}");
        assert!(worst <= 1.0, "{stem}: off by {worst:.3} allowances");
        worst_all = worst_all.max(worst);
    }
    eprintln!("worst over all files: {worst_all:.4}");
}

/// Machine-code size per kernel and the best build + compile time of `runs`
/// compilations of an LSTM layer (input 128, hidden 256, batch 64) of `t` steps.
fn lstm_compile_stats(t: usize, runs: usize) -> (Vec<usize>, f64) {
    let src = recurrent_src("lstm", t, 64, 128, 256);
    let g = dlc_ir::syntax::parse_graph(&src, &Default::default()).unwrap();
    let mut best = f64::INFINITY;
    let mut sizes = vec![];
    for _ in 0..runs {
        let p = dlc_codegen::compile(&g, &Default::default()).unwrap();
        sizes = p.code.dumps.iter().map(|d| d.code_bytes).collect();
        best = best.min(p.times.build + p.times.compile);
    }
    (sizes, best)
}

/// A sequence compiles to a loop: the recurrence kernel's machine code is the
/// same for 1000 and 100,000 steps and within 1% for 10 steps (the step count
/// is an immediate, one byte wide for 10, which can shift register allocation
/// by a few bytes), and compile time does not grow. (The input
/// projection is one GEMM of `T*B` rows whatever `T` is; its blocking constants,
/// and below 128 KiB of input rows its algorithm, depend on the row count, so
/// batch 64 keeps both lengths on the packed GEMM and its code within a few percent.)
#[test]
fn sequence_length_does_not_grow_code() {
    // Interleaved samples, the best of each, until the check passes or 30 rounds
    // have run: the machine may be busy (other tests run in this process too).
    let (mut short, mut long) = ((vec![], f64::INFINITY), (vec![], f64::INFINITY));
    for _ in 0..30 {
        let s = lstm_compile_stats(10, 1);
        let l = lstm_compile_stats(1000, 1);
        short = (s.0, short.1.min(s.1));
        long = (l.0, long.1.min(l.1));
        if long.1 < 2.0 * short.1 && short.1 < 2.0 * long.1 {
            break;
        }
    }
    eprintln!(
        "code bytes per kernel: seq 10 {:?}, seq 1000 {:?}",
        short.0, long.0
    );
    eprintln!(
        "best build+compile: seq 10 {:.2} ms, seq 1000 {:.2} ms",
        short.1 * 1e3,
        long.1 * 1e3
    );
    assert_eq!(short.0.len(), 2, "a GEMM and the recurrence");
    assert!(
        short.0[1].abs_diff(long.0[1]) * 100 <= short.0[1],
        "the recurrence's code depends on the sequence length"
    );
    let longest = lstm_compile_stats(100_000, 1);
    assert_eq!(
        long.0[1], longest.0[1],
        "the recurrence's code depends on the sequence length"
    );
    let (a, b): (usize, usize) = (short.0.iter().sum(), long.0.iter().sum());
    assert!(a.abs_diff(b) * 20 <= a, "code size {a} vs {b} bytes");
    assert!(
        long.1 < 2.0 * short.1,
        "compile time grows with the sequence length"
    );
}
