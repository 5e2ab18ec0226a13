//! The rewrite rules: one table, [`RULES`], of named, grouped, directed rules.
//!
//! A rule is data: a left-hand side (an egg pattern, a multi-pattern, or a
//! built-in searcher), an optional condition, a right-hand side (a pattern,
//! instantiated with type checking by [`TypedPattern`], or a custom applier that
//! builds typed nodes), whether it is exact, and an *example*: a builder of random
//! instances of its left-hand side, from which the property tests check that both
//! sides agree on the interpreter.
//!
//! There are no general commutativity or associativity rules (they make the e-graph
//! explode for no gain): each rule is written in the direction that helps, and
//! the few symmetric cases (`x * 1` and `1 * x`) are separate rules. Matmul
//! re-association has both directions because the cheaper bracketing depends on
//! the shapes and only the cost model can tell.

mod apply;
pub mod examples;

use egg::{ConditionalApplier, Id, MultiPattern, Pattern, Rewrite, Subst};

use crate::analysis::{TensorAnalysis, TensorGraph};
use crate::build::TypedPattern;
use crate::lang::Tensor;
use examples::Example;

/// Rule families, selectable with `--rules`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Identities, cancellations, linearity, scalar hoisting.
    Algebraic,
    /// Transpose and reshape cancellation, transposes through matmul.
    Layout,
    /// Matmul re-association and merging of GEMMs that share an input.
    Matmul,
    /// Constant folding and batchnorm folding into weights.
    Folding,
    /// Patterns that become one fused backend op (attention).
    Fusion,
}

impl Group {
    /// Every group, in order.
    pub const ALL: [Group; 5] = [
        Group::Algebraic,
        Group::Layout,
        Group::Matmul,
        Group::Folding,
        Group::Fusion,
    ];

    /// The group's name (as `--rules` spells it).
    pub fn name(self) -> &'static str {
        match self {
            Group::Algebraic => "algebraic",
            Group::Layout => "layout",
            Group::Matmul => "matmul",
            Group::Folding => "folding",
            Group::Fusion => "fusion",
        }
    }

    /// Parses a group name.
    pub fn from_name(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == name)
    }
}

/// What a rule matches.
pub enum Lhs {
    /// An egg pattern.
    Pattern(&'static str),
    /// An egg multi-pattern (`?a = (...), ?b = (...)`).
    Multi(&'static str),
    /// Classes whose value is known but that hold no constant (constant folding).
    KnownValue,
}

/// What a rule produces.
pub enum Rhs {
    /// An egg pattern, instantiated with type checking.
    Pattern(&'static str),
    /// A custom applier: builds typed nodes, unions them, returns whether anything changed.
    Apply(apply::ApplyFn),
}

/// A condition on a match.
pub type Cond = fn(&TensorGraph, &Subst) -> bool;

/// One rewrite rule.
pub struct Rule {
    /// Unique name (reported by `--explain`).
    pub name: &'static str,
    /// Its family.
    pub group: Group,
    /// `true` when both sides agree for every input up to rounding; `false` when
    /// they agree only for finite values without overflow (enabled at `-O2`).
    pub exact: bool,
    /// What it matches.
    pub lhs: Lhs,
    /// When it applies (besides the type check every rewrite makes).
    pub when: Option<Cond>,
    /// What it produces.
    pub rhs: Rhs,
    /// The rule in words (shown in docs and `--explain`).
    pub doc: &'static str,
    /// Builds a random instance of the left-hand side (for the property tests).
    pub example: Example,
}

use apply as a;
use examples as ex;

/// The rule table.
pub static RULES: &[Rule] = &[
    // ---- algebraic ----
    Rule {
        name: "mul-one",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(mul ?x ?c)"),
        when: Some(a::c_is_one),
        rhs: Rhs::Pattern("?x"),
        doc: "x * 1 → x",
        example: ex::mul_one,
    },
    Rule {
        name: "mul-one-left",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(mul ?c ?x)"),
        when: Some(a::c_is_one),
        rhs: Rhs::Pattern("?x"),
        doc: "1 * x → x",
        example: ex::mul_one_left,
    },
    Rule {
        name: "div-one",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(div ?x ?c)"),
        when: Some(a::c_is_one),
        rhs: Rhs::Pattern("?x"),
        doc: "x / 1 → x",
        example: ex::div_one,
    },
    Rule {
        name: "add-zero",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(add ?x ?c)"),
        when: Some(a::c_is_zero),
        rhs: Rhs::Pattern("?x"),
        doc: "x + 0 → x",
        example: ex::add_zero,
    },
    Rule {
        name: "add-zero-left",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(add ?c ?x)"),
        when: Some(a::c_is_zero),
        rhs: Rhs::Pattern("?x"),
        doc: "0 + x → x",
        example: ex::add_zero_left,
    },
    Rule {
        name: "sub-zero",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(sub ?x ?c)"),
        when: Some(a::c_is_zero),
        rhs: Rhs::Pattern("?x"),
        doc: "x - 0 → x",
        example: ex::sub_zero,
    },
    Rule {
        name: "sub-self",
        group: Group::Algebraic,
        exact: false,
        lhs: Lhs::Pattern("(sub ?x ?x)"),
        when: None,
        rhs: Rhs::Apply(a::zeros_like_x),
        doc: "x - x → 0 (finite x only: inf - inf is NaN)",
        example: ex::sub_self,
    },
    Rule {
        name: "add-neg",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(add ?a (neg ?b))"),
        when: None,
        rhs: Rhs::Pattern("(sub ?a ?b)"),
        doc: "a + (-b) → a - b",
        example: ex::add_neg,
    },
    Rule {
        name: "sub-neg",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(sub ?a (neg ?b))"),
        when: None,
        rhs: Rhs::Pattern("(add ?a ?b)"),
        doc: "a - (-b) → a + b",
        example: ex::sub_neg,
    },
    Rule {
        name: "neg-neg",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(neg (neg ?x))"),
        when: None,
        rhs: Rhs::Pattern("?x"),
        doc: "-(-x) → x",
        example: ex::neg_neg,
    },
    Rule {
        name: "relu-relu",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(relu (relu ?x))"),
        when: None,
        rhs: Rhs::Pattern("(relu ?x)"),
        doc: "relu(relu(x)) → relu(x)",
        example: ex::relu_relu,
    },
    Rule {
        name: "log-exp",
        group: Group::Algebraic,
        exact: false,
        lhs: Lhs::Pattern("(log (exp ?x))"),
        when: None,
        rhs: Rhs::Pattern("?x"),
        doc: "log(exp(x)) → x (no overflow: exp(x) finite)",
        example: ex::log_exp,
    },
    Rule {
        name: "matmul-linear",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(add (matmul ?x ?a) (matmul ?x ?b))"),
        when: None,
        rhs: Rhs::Pattern("(matmul ?x (add ?a ?b))"),
        doc: "x·a + x·b → x·(a + b)",
        example: ex::matmul_linear,
    },
    Rule {
        name: "scalar-hoist-in",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(matmul (mul ?x ?s) ?w)"),
        when: Some(a::s_is_scalar),
        rhs: Rhs::Pattern("(matmul ?x (mul ?w ?s))"),
        doc: "(x·s)·w → x·(w·s) for a scalar s",
        example: ex::scalar_hoist_in,
    },
    Rule {
        name: "scalar-hoist-out",
        group: Group::Algebraic,
        exact: true,
        lhs: Lhs::Pattern("(mul (matmul ?x ?w) ?s)"),
        when: Some(a::s_is_scalar),
        rhs: Rhs::Pattern("(matmul ?x (mul ?w ?s))"),
        doc: "(x·w)·s → x·(w·s) for a scalar s",
        example: ex::scalar_hoist_out,
    },
    // ---- layout ----
    Rule {
        name: "transpose-transpose",
        group: Group::Layout,
        exact: true,
        lhs: Lhs::Pattern("(transpose ?p (transpose ?q ?x))"),
        when: None,
        rhs: Rhs::Apply(a::compose_transposes),
        doc: "transpose(transpose(x, q), p) → transpose(x, q∘p), or x when that is the identity",
        example: ex::transpose_transpose,
    },
    Rule {
        name: "transpose-identity",
        group: Group::Layout,
        exact: true,
        lhs: Lhs::Pattern("(transpose ?p ?x)"),
        when: Some(a::p_is_identity),
        rhs: Rhs::Pattern("?x"),
        doc: "transpose(x, identity) → x",
        example: ex::transpose_identity,
    },
    Rule {
        name: "reshape-reshape",
        group: Group::Layout,
        exact: true,
        lhs: Lhs::Pattern("(reshape ?s (reshape ?t ?x))"),
        when: None,
        rhs: Rhs::Pattern("(reshape ?s ?x)"),
        doc: "reshape(reshape(x)) → reshape(x)",
        example: ex::reshape_reshape,
    },
    Rule {
        name: "reshape-identity",
        group: Group::Layout,
        exact: true,
        lhs: Lhs::Pattern("(reshape ?s ?x)"),
        when: None,
        rhs: Rhs::Pattern("?x"),
        doc: "reshape(x) to x's own shape → x (the type check enforces the shape)",
        example: ex::reshape_identity,
    },
    Rule {
        name: "transpose-matmul",
        group: Group::Layout,
        exact: true,
        lhs: Lhs::Pattern("(transpose ?p (matmul ?a ?b))"),
        when: Some(a::p_swaps_last_two),
        rhs: Rhs::Pattern("(matmul (transpose ?p ?b) (transpose ?p ?a))"),
        doc: "(a·b)ᵀ → bᵀ·aᵀ (swapping the last two dims)",
        example: ex::transpose_matmul,
    },
    Rule {
        name: "matmul-transposes",
        group: Group::Layout,
        exact: true,
        lhs: Lhs::Pattern("(matmul (transpose ?p ?a) (transpose ?p ?b))"),
        when: Some(a::p_swaps_last_two),
        rhs: Rhs::Pattern("(transpose ?p (matmul ?b ?a))"),
        doc: "aᵀ·bᵀ → (b·a)ᵀ (one transpose instead of two)",
        example: ex::matmul_transposes,
    },
    // ---- matmul ----
    Rule {
        name: "matmul-assoc-right",
        group: Group::Matmul,
        exact: true,
        lhs: Lhs::Pattern("(matmul (matmul ?a ?b) ?c)"),
        when: None,
        rhs: Rhs::Pattern("(matmul ?a (matmul ?b ?c))"),
        doc: "(a·b)·c → a·(b·c) (the cost model picks the bracketing)",
        example: ex::matmul_assoc_right,
    },
    Rule {
        name: "matmul-assoc-left",
        group: Group::Matmul,
        exact: true,
        lhs: Lhs::Pattern("(matmul ?a (matmul ?b ?c))"),
        when: None,
        rhs: Rhs::Pattern("(matmul (matmul ?a ?b) ?c)"),
        doc: "a·(b·c) → (a·b)·c",
        example: ex::matmul_assoc_left,
    },
    Rule {
        name: "matmul-merge",
        group: Group::Matmul,
        exact: true,
        lhs: Lhs::Multi("?a = (matmul ?x ?w1), ?b = (matmul ?x ?w2)"),
        when: Some(a::distinct_2d_weights),
        rhs: Rhs::Apply(a::merge_matmuls),
        doc: "x·w1, x·w2 → slices of x·concat(w1, w2) (one GEMM; extraction weighs the shared GEMM once)",
        example: ex::matmul_merge,
    },
    // ---- folding ----
    Rule {
        name: "fold-constant",
        group: Group::Folding,
        exact: true,
        lhs: Lhs::KnownValue,
        when: None,
        rhs: Rhs::Apply(a::fold_constant),
        doc: "a parameter-free value (computed at compile time by the interpreter, in f32) → a constant",
        example: ex::fold_constant,
    },
    Rule {
        name: "batchnorm-matmul",
        group: Group::Folding,
        exact: true,
        lhs: Lhs::Pattern("(batchnorm ?e (matmul ?x ?w) ?g ?b ?m ?v)"),
        when: None,
        rhs: Rhs::Apply(a::bn_matmul),
        doc: "batchnorm(x·w) → x·(w·s) + (β - μ·s), s = γ/√(σ²+ε) (2-D)",
        example: ex::batchnorm_matmul,
    },
    Rule {
        name: "batchnorm-matmul-bias",
        group: Group::Folding,
        exact: true,
        lhs: Lhs::Pattern("(batchnorm ?e (add (matmul ?x ?w) ?c) ?g ?b ?m ?v)"),
        when: None,
        rhs: Rhs::Apply(a::bn_matmul),
        doc: "batchnorm(x·w + c) → x·(w·s) + ((c - μ)·s + β)",
        example: ex::batchnorm_matmul_bias,
    },
    Rule {
        name: "batchnorm-conv",
        group: Group::Folding,
        exact: true,
        lhs: Lhs::Pattern("(batchnorm ?e (conv ?k ?x ?w) ?g ?b ?m ?v)"),
        when: None,
        rhs: Rhs::Apply(a::bn_conv),
        doc: "batchnorm(conv(x, w)) → conv(x, w·s, β - μ·s)",
        example: ex::batchnorm_conv,
    },
    Rule {
        name: "batchnorm-conv-bias",
        group: Group::Folding,
        exact: true,
        lhs: Lhs::Pattern("(batchnorm ?e (conv ?k ?x ?w ?c) ?g ?b ?m ?v)"),
        when: None,
        rhs: Rhs::Apply(a::bn_conv),
        doc: "batchnorm(conv(x, w, c)) → conv(x, w·s, (c - μ)·s + β)",
        example: ex::batchnorm_conv_bias,
    },
    // ---- fusion ----
    Rule {
        name: "attention",
        group: Group::Fusion,
        exact: true,
        lhs: Lhs::Pattern("(matmul (softmax ?ax (matmul ?q (transpose ?p ?k))) ?v)"),
        when: Some(a::attention_shape),
        rhs: Rhs::Apply(a::attention_unscaled),
        doc: "softmax(q·kᵀ)·v → attention(q, k, v, scale=1)",
        example: ex::attention,
    },
    Rule {
        name: "attention-mul",
        group: Group::Fusion,
        exact: true,
        lhs: Lhs::Pattern("(matmul (softmax ?ax (mul (matmul ?q (transpose ?p ?k)) ?s)) ?v)"),
        when: Some(a::attention_shape_scalar),
        rhs: Rhs::Apply(a::attention_mul),
        doc: "softmax(q·kᵀ·s)·v → attention(q, k, v, scale=s) for a constant scalar s",
        example: ex::attention_mul,
    },
    Rule {
        name: "attention-div",
        group: Group::Fusion,
        exact: true,
        lhs: Lhs::Pattern("(matmul (softmax ?ax (div (matmul ?q (transpose ?p ?k)) ?s)) ?v)"),
        when: Some(a::attention_shape_scalar),
        rhs: Rhs::Apply(a::attention_div),
        doc: "softmax(q·kᵀ/s)·v → attention(q, k, v, scale=1/s) for a constant scalar s",
        example: ex::attention_div,
    },
];

/// Finds a rule by name.
pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

impl Rule {
    /// The rule as an egg rewrite.
    ///
    /// # Panics
    /// If the rule's patterns do not parse (a bug in the table, caught by the tests).
    pub fn rewrite(&self) -> Rewrite<Tensor, TensorAnalysis> {
        let applier: Box<dyn egg::Applier<Tensor, TensorAnalysis> + Send + Sync> = match &self.rhs {
            Rhs::Pattern(p) => Box::new(TypedPattern::new(parse(self.name, p))),
            Rhs::Apply(f) => Box::new(a::Custom(*f)),
        };
        let applier: Box<dyn egg::Applier<Tensor, TensorAnalysis> + Send + Sync> = match self.when {
            Some(c) => Box::new(ConditionalApplier {
                condition: move |g: &mut TensorGraph, _: Id, s: &Subst| c(g, s),
                applier: a::Boxed(applier),
            }),
            None => applier,
        };
        let applier = a::Boxed(applier);
        let result = match &self.lhs {
            Lhs::Pattern(p) => Rewrite::new(self.name, parse(self.name, p), applier),
            Lhs::Multi(p) => {
                let m: MultiPattern<Tensor> = p
                    .parse()
                    .unwrap_or_else(|e| panic!("rule {}: bad multi-pattern: {e:?}", self.name));
                Rewrite::new(self.name, m, applier)
            }
            Lhs::KnownValue => Rewrite::new(self.name, a::KnownValue, applier),
        };
        result.unwrap_or_else(|e| panic!("rule {}: {e}", self.name))
    }
}

fn parse(rule: &str, p: &str) -> Pattern<Tensor> {
    p.parse()
        .unwrap_or_else(|e| panic!("rule {rule}: bad pattern `{p}`: {e:?}"))
}
