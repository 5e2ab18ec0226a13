//! The JIT's grid-LSTM gradient (`grid_lstm_grad`) against the interpreter on
//! random shapes, normal and checked mode: batch 1 and 2, hidden sizes that are
//! not multiples of four (7, 13) and small ones, grids of one row, one column
//! and 3×5. Values come from the generator (`dlc_testgen::random_values`) and
//! every output is held to the generator's error-model tolerance
//! (`dlc_testgen::tolerance`: the gradients of a grid are a backpropagation
//! through `Hg + Wg` steps, the weight gradients sums over all cells).

mod common;

use common::check;
use dlc_testgen::Case;
use proptest::prelude::*;

/// A `grid_lstm_grad` model of the given extents; the weights have the
/// PyTorch-style `1/sqrt(F + 2H)` scale.
fn src([hg, wg, b, f, h]: [usize; 5]) -> String {
    let (k, g) = (f + 2 * h, 4 * h);
    let a = 1.0 / (k as f64).sqrt();
    format!(
        "model m {{\n input x: f32[{hg}, {wg}, {b}, {f}]\n\
         param w1: f32[{k}, {g}] = uniform(-{a}, {a})\n param b1: f32[{g}] = uniform(-{a}, {a})\n\
         param w2: f32[{k}, {g}] = uniform(-{a}, {a})\n param b2: f32[{g}] = uniform(-{a}, {a})\n\
         input dy: f32[{hg}, {wg}, {b}, {h2}]\n\
         input dhv: f32[{wg}, {b}, {h}]\n input dmv: f32[{wg}, {b}, {h}]\n\
         input dhh: f32[{hg}, {b}, {h}]\n input dmh: f32[{hg}, {b}, {h}]\n\
         dx, dw1, db1, dw2, db2 = grid_lstm_grad(x, w1, b1, w2, b2, dy, dhv, dmv, dhh, dmh)\n\
         output dx, dw1, db1, dw2, db2\n}}\n",
        h2 = 2 * h
    )
}

/// A case of the given extents with the generator's values for `seed`.
fn case(dims: [usize; 5], seed: u64) -> Case {
    Case::parse(&src(dims), seed)
}

/// Grid extents: one row, one column, or 3×5.
fn grid() -> impl Strategy<Value = (usize, usize)> {
    prop_oneof![
        (1..=6usize).prop_map(|n| (1, n)),
        (1..=6usize).prop_map(|n| (n, 1)),
        Just((3, 5)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn grid_lstm_grad_matches_interpreter(
        (hg, wg) in grid(),
        b in prop_oneof![3 => Just(1usize), 1 => Just(2usize)],
        f in 1..=6usize,
        h in prop_oneof![Just(7usize), Just(13), 1..=4usize],
        checked in any::<bool>(),
        seed in any::<u64>(),
    ) {
        check(&case([hg, wg, b, f, h], seed), checked)?;
    }
}

/// Hand-picked shapes, each in both modes.
#[test]
fn grid_lstm_grad_hand_shapes() {
    for dims in [
        [1, 1, 1, 1, 1],
        [1, 5, 1, 3, 7],
        [5, 1, 1, 3, 13],
        [3, 5, 1, 4, 13],
        [3, 5, 2, 2, 7],
        [4, 4, 3, 5, 8],
    ] {
        for checked in [false, true] {
            if let Err(e) = check(&case(dims, 11), checked) {
                panic!("{dims:?} checked={checked}: {e}");
            }
        }
    }
}

/// Machine-code bytes of the backward sweep (`grid_bptt`) for a grid of the
/// given extents (batch 2, 3 features, hidden 7).
fn bptt_code_bytes(hg: usize, wg: usize) -> usize {
    let text = src([hg, wg, 2, 3, 7]);
    let g = dlc_ir::syntax::parse_graph(&text, &Default::default()).unwrap();
    let p = dlc_codegen::compile(&g, &Default::default()).unwrap();
    let at = p
        .lowered
        .kernels
        .iter()
        .position(|k| k.name.ends_with("grid_bptt"))
        .expect("a grid_bptt kernel");
    p.code.dumps[at].code_bytes
}

/// The backward sweep is loops over the grid: its code is the same size for
/// a 2×3 and a 30×40 grid, up to 1% (the extents are immediates whose width
/// can shift register allocation by a few bytes).
#[test]
fn grid_size_does_not_grow_code() {
    let (small, large) = (bptt_code_bytes(2, 3), bptt_code_bytes(30, 40));
    eprintln!("grid_bptt code bytes: 2x3 {small}, 30x40 {large}");
    assert!(
        small.abs_diff(large) * 100 <= small,
        "{small} vs {large} bytes"
    );
}
