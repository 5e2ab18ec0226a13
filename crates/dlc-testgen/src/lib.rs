//! dlc's random model generator, shared by the property tests (interpreter vs
//! JIT, optimised vs unoptimised, print/parse round trip), the differential
//! fuzzer (`dlc fuzz`) and the benchmarks.
//!
//! - [`random_graph`]: a random, well-typed graph that [`dlc_ir::verify()`] accepts,
//!   built deterministically from a seed (the same on every machine: the only
//!   random source is [`dlc_ir::init::SplitMix64`]);
//! - [`random_values`]: inputs and parameters for it that keep every op in its
//!   domain (no NaN or infinity), with indices and labels in range;
//! - [`tolerance`]: how closely two implementations must agree on a value;
//! - [`arb_case`] (feature `proptest`, on by default): the same as a proptest
//!   strategy whose shrinking removes trailing ops.
//!
//! ```
//! use dlc_testgen::{Family, GenConfig, random_graph, random_values, tolerances};
//! let cfg = GenConfig::default().with_families(&[Family::Conv, Family::Pool]);
//! let g = random_graph(42, &cfg);
//! dlc_ir::verify(&g).unwrap();
//! let (inputs, params) = random_values(&g, 42);
//! dlc_tensor::check_inputs(&g, &inputs).unwrap();
//! dlc_tensor::check_params(&g, &params).unwrap();
//! for (name, tol) in tolerances(&g) {
//!     assert!(tol.atol >= 0.0, "{name}");
//! }
//! ```
//!
//! # What graphs look like
//!
//! A graph has 1 to [`GenConfig::max_ops`] *main ops*, each from a family drawn
//! from [`GenConfig::families`]. An op's operands are usually the previous main
//! result (a chain; reshaped or cast when the op needs another rank or dtype),
//! sometimes any earlier value (a DAG with shared values), else fresh inputs,
//! parameters or constants. Shapes favour 1, 3, 7, 13 and 31 (64, 100, 257 when
//! `max_dim` allows) and broadcasting on both sides; attributes are drawn from
//! their full valid ranges and constructed valid (strides, asymmetric paddings,
//! dilations, groups dividing channels, pooling padding <= kernel/2, axis subsets,
//! slice steps, permutations, heads dividing E, causal flags, training flags,
//! dropout seeds). Multi-result ops contribute a random subset of their results;
//! 1 to [`GenConfig::max_outputs`] values become outputs.
//!
//! # Domain safety
//!
//! f32 inputs are uniform in `[-2, 2)`. Inside the graph, operands are made safe by
//! construction: `log`/`sqrt`/`rsqrt` and `pow` bases get `c + abs(x)` (or `relu`,
//! `softplus`, `sigmoid`, `exp`) with `c >= 0.25`; denominators are that or its
//! negation; `exp` and `pow` exponents are bounded by `tanh`, `sigmoid`, a clamp or
//! a power-of-two scaling; operands of ops that multiply magnitudes are bounded
//! (by 64, or 8 for matmul/conv inputs). Discontinuous ops (comparisons, `argmax`,
//! casts to integers) only see values every backend holds bit-identically
//! (sources and values selected from them), so a rounding difference can never
//! flip a boolean or an index.
//!
//! # How tolerances are chosen
//!
//! [`tolerance`] propagates, in node order, a *practical range* and an estimate of
//! the *absolute error* `err` of an f32 implementation against exact arithmetic
//! (`eps = 2^-23`; "k ulp" below means `k·eps` times the magnitude named). The
//! tolerance is [`SAFETY`]` = 8` times that error: `atol = 8·err`,
//! `rtol = 8·err/max|range|`. Two implementations may err in opposite
//! directions and the estimates are typical-case bounds, hence the margin; an
//! error of a different order (a wrong index, a lost term, an approximation off
//! by more than its ulp budget at the value's scale) fails. Per op:
//!
//! | op | error of the result |
//! |---|---|
//! | sources; layout, gather, concat, max/min, relu, abs, neg, clamp, where, max pool, argmax, comparisons, casts | the operands' (none for sources); values only ever *selected* from sources are exact and get [`Tol::EXACT`], as do all integer and boolean values |
//! | add, sub, mul | carried (scaled by the other operand for mul) + 1 ulp of the result |
//! | div `x/y`, `\|y\| >= d` | `e_x/d + \|x\|·e_y/d² + 2` ulp of the result |
//! | exp | `exp(hi)·e_x` + 4 ulp of the result (vectorised polynomial) |
//! | log, tanh, sigmoid | Lipschitz bound · `e_x` + 4 ulp of `max(\|result\|, 1)` |
//! | gelu (both forms), softplus, elu | Lipschitz bound · `e_x` + 8 ulp (composite approximations) |
//! | sqrt, rsqrt | Lipschitz bound at the lower end · `e_x` + 1 or 2 ulp |
//! | pow `a^b` | `\|r\|·(\|b\|·e_a/a + \|log a\|·e_b + 8·eps·(1 + \|b log a\|))` |
//! | matmul, conv, conv_transpose, sum (`n` terms) | carried `e_a·(sqrt(n)·\|b\| + n·\|mean b\|)` (independent errors grow as `sqrt(n)`, shared offsets as `n`) and symmetrically, plus accumulation `sqrt(n)·eps·scale`, `scale = sqrt(n)·\|a\|·\|b\| + n·\|mean a·mean b\|` |
//! | mean, avg pool, global pool | `e_x + (sqrt(n) + 1)` ulp of `\|x\|` |
//! | softmax | `2·e_x` (Jacobian rows sum to <= 2) + `eps·(ln n + sqrt(n) + 6)`: rounding `x - max` moves `p_j` by `eps·p_j·gap_j`, and the mean gap of a softmax is at most `ln n` |
//! | log_softmax, cross_entropy | `2·e_x + eps·(8 + sqrt(n) + 3·(range + ln n))` |
//! | layernorm, batchnorm (training) | `(2·e_x + (2 + sqrt(n)) ulp of \|x\|)·(1 + z)/sqrt(eps_op)` with `z = min(sqrt(n-1), 6)`: a group may be nearly constant (relu'd or broadcast data), so the amplification is bounded by `1/sqrt(eps_op)`, not `1/std` |
//! | batchnorm (inference) | elementwise, with `rsqrt(running_var + eps)` |
//! | rnn, lstm, gru (`T` steps), grid_lstm (`Hg + Wg` steps) | each step by the rules above (sums of length `I` and `H`, gates); the error carried from one state to the next is capped at gain 1 (saturating gates, forget gates < 1, `U(±1/sqrt(H))` recurrent weights of spectral radius ~0.6), so the error grows linearly with the number of steps |
//! | attention, multi-head | scores as a sum of length `E`; the output is a convex combination of `v`: `e_v + e_scores·range(v)/2` (Cauchy–Schwarz) `+ eps·(2 ln S + 2 sqrt(S) + 12)·\|v\|` |
//! | dropout (training) | `e_x/(1-p)` + 1 ulp |
//!
//! Ranges follow interval arithmetic for elementwise ops; sums of `n` terms take
//! `n·mean ± 2·sqrt(n)·max` (about 6 standard deviations for uniform data),
//! clipped to the true bound. The generator refuses main ops whose estimated error
//! would exceed `1e-3` of their magnitude (it retries the step on fresh operands,
//! or, for normalisation, with a larger `eps`), so every generated f32 value gets
//! `rtol <= 8e-3`; half of the outputs get `rtol <~ 2e-5`.
//!
//! Checked against the reference interpreter, f32 against f64, on thousands of
//! generated graphs: the largest observed error is about 6% of the tolerance.
#![deny(missing_docs)]

mod build;
mod config;
mod facts;
mod family;
mod rng;
mod tol;
mod values;

use dlc_ir::Graph;
use dlc_tensor::Env;

pub use config::GenConfig;
pub use family::Family;
pub use tol::{SAFETY, Tol, tolerance, tolerances, tolerances_for_values};
pub use values::{DEFAULT_INT_LIMIT, F32_INPUT_BOUND, index_limit, random_values};

/// A random, well-typed, verified graph built deterministically from `seed`.
///
/// It has between 1 and `cfg.max_ops` main ops (the count is drawn from the seed);
/// see the [crate documentation](crate) for what the graphs contain.
pub fn random_graph(seed: u64, cfg: &GenConfig) -> Graph {
    build::build(seed, cfg, build::op_count(seed, cfg))
}

/// Like [`random_graph`] with exactly `ops` main ops (at least 1). For a fixed
/// seed, the graph with `n` ops begins with the `n - 1` main ops of the graph
/// with `n - 1` ops (outputs aside), so shrinking `ops` shrinks the graph.
pub fn random_graph_with_ops(seed: u64, cfg: &GenConfig, ops: usize) -> Graph {
    build::build(seed, cfg, ops)
}

/// One generated test case: a graph with its inputs and parameters.
#[derive(Clone, Debug)]
pub struct Case {
    /// The seed the graph and values were drawn from.
    pub seed: u64,
    /// The number of main ops (`random_graph_with_ops(seed, cfg, ops)` rebuilds it).
    pub ops: usize,
    /// The graph.
    pub graph: Graph,
    /// Input values ([`random_values`]).
    pub inputs: Env,
    /// Parameter values ([`random_values`]).
    pub params: Env,
}

impl Case {
    /// The case [`random_graph`] draws for `seed` (its op count drawn from the seed too).
    pub fn from_seed(seed: u64, cfg: &GenConfig) -> Case {
        Case::new(seed, build::op_count(seed, cfg), cfg)
    }

    /// The case for a seed and an op count.
    pub fn new(seed: u64, ops: usize, cfg: &GenConfig) -> Case {
        let mut case = Case::of_graph(random_graph_with_ops(seed, cfg, ops), seed);
        case.ops = ops;
        case
    }

    /// A hand-built graph with the generator's input and parameter values for `seed`
    /// (counted as one op).
    pub fn of_graph(graph: Graph, seed: u64) -> Case {
        let (inputs, params) = random_values(&graph, seed);
        Case {
            seed,
            ops: 1,
            graph,
            inputs,
            params,
        }
    }

    /// [`Case::of_graph`] of a graph written in IR text; panics with the parse error
    /// and the text when the text is not a valid graph (for tests' fixed sources).
    pub fn parse(text: &str, seed: u64) -> Case {
        let graph = dlc_ir::syntax::parse_graph(text, &Default::default())
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        Case::of_graph(graph, seed)
    }
}

/// A proptest strategy of [`Case`]s: a seed and an op count in `1..=cfg.max_ops`.
/// Shrinking lowers the op count (the graph loses its trailing ops) and the seed.
#[cfg(feature = "proptest")]
pub fn arb_case(cfg: GenConfig) -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    let max = cfg.max_ops.max(1);
    (any::<u64>(), 1..=max).prop_map(move |(seed, ops)| Case::new(seed, ops, &cfg))
}

#[cfg(test)]
mod tests;
