//! The surface op table: every op callable from `.ir` text, as data.
//!
//! One entry per op name: operand count range, attributes with their kinds and
//! defaults, results, a summary and an example. The table drives arity and
//! unknown-attribute errors, attribute defaults during elaboration, the printer's
//! "differs from default" test and the op reference in `docs/ir.md`
//! ([`reference_markdown`]).

/// What an attribute accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    /// An integer (may be negative, e.g. an axis).
    Int,
    /// An integer or a list of integers (axes, perms, slice bounds).
    Ints,
    /// A number (integer, float, `inf`, `-inf`).
    Float,
    /// `true` or `false`.
    Bool,
    /// A size: a non-negative integer or a named dim.
    Size,
    /// A size or a list of sizes (one per spatial dim).
    Sizes,
    /// A list of sizes or named dims (`-1` allowed once in `reshape`).
    Shape,
    /// A padding: size, list of sizes, `"same"` or `"valid"`.
    Padding,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// A dtype name: `f32`, `i64` or `bool`.
    DType,
    /// A non-negative integer up to 2^64 - 1.
    Seed,
}

impl AttrType {
    /// How the kind is described in errors and docs.
    pub fn describe(self) -> String {
        match self {
            AttrType::Int => "an integer".into(),
            AttrType::Ints => "an integer or a list of integers".into(),
            AttrType::Float => "a number".into(),
            AttrType::Bool => "`true` or `false`".into(),
            AttrType::Size => "a size (integer or named dim)".into(),
            AttrType::Sizes => "a size or a list of sizes".into(),
            AttrType::Shape => "a list of sizes".into(),
            AttrType::Padding => "a size, a list of sizes, \"same\" or \"valid\"".into(),
            AttrType::Choice(c) => {
                let c: Vec<String> = c.iter().map(|s| format!("\"{s}\"")).collect();
                format!("one of {}", c.join(", "))
            }
            AttrType::DType => "a dtype (f32, i64 or bool)".into(),
            AttrType::Seed => "a non-negative integer".into(),
        }
    }
}

/// An attribute's default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrDefault {
    /// The attribute must be given.
    Required,
    /// Computed from the operands or other attributes (described for the docs).
    Computed(&'static str),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A bool.
    Bool(bool),
    /// A string.
    Str(&'static str),
}

impl AttrDefault {
    /// How the default is written in docs.
    pub fn describe(self) -> String {
        match self {
            AttrDefault::Required => "required".into(),
            AttrDefault::Computed(s) => s.into(),
            AttrDefault::Int(i) => i.to_string(),
            AttrDefault::Float(f) if f == f64::NEG_INFINITY => "-inf".into(),
            AttrDefault::Float(f) if f == f64::INFINITY => "inf".into(),
            AttrDefault::Float(f) => format!("{f:?}"),
            AttrDefault::Bool(b) => b.to_string(),
            AttrDefault::Str(s) => format!("\"{s}\""),
        }
    }
}

/// One attribute of an op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttrSpec {
    /// Its keyword.
    pub name: &'static str,
    /// What it accepts.
    pub ty: AttrType,
    /// Its default.
    pub default: AttrDefault,
}

/// One surface op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpSpec {
    /// The name used in calls.
    pub name: &'static str,
    /// The operands as documented (`x, w, b?`).
    pub operands: &'static str,
    /// Fewest operands.
    pub min: usize,
    /// Most operands (`usize::MAX` for variadic).
    pub max: usize,
    /// Keyword attributes.
    pub attrs: &'static [AttrSpec],
    /// The results as documented (`y, h_n, c_n`).
    pub results: &'static str,
    /// What it computes.
    pub summary: &'static str,
    /// A one-line example.
    pub example: &'static str,
}

impl OpSpec {
    /// The attribute named `name`.
    pub fn attr(&self, name: &str) -> Option<&'static AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// The default of attribute `name` (panics if the table lacks it: a table bug).
    pub fn default(&self, name: &str) -> AttrDefault {
        self.attr(name)
            .unwrap_or_else(|| panic!("op table: `{}` has no attribute `{name}`", self.name))
            .default
    }

    /// The float default of `name` (0 if not a float default).
    pub fn float_default(&self, name: &str) -> f64 {
        match self.default(name) {
            AttrDefault::Float(f) => f,
            AttrDefault::Int(i) => i as f64,
            _ => 0.0,
        }
    }
}

/// The op named `name`.
pub fn lookup(name: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|o| o.name == name)
}

/// The op named `name`, which must exist (for the printer and lowering).
pub fn spec(name: &str) -> &'static OpSpec {
    lookup(name).unwrap_or_else(|| panic!("op table has no `{name}`"))
}

const fn a(name: &'static str, ty: AttrType, default: AttrDefault) -> AttrSpec {
    AttrSpec { name, ty, default }
}

const fn op(
    name: &'static str,
    operands: &'static str,
    (min, max): (usize, usize),
    attrs: &'static [AttrSpec],
    results: &'static str,
    summary: &'static str,
    example: &'static str,
) -> OpSpec {
    OpSpec {
        name,
        operands,
        min,
        max,
        attrs,
        results,
        summary,
        example,
    }
}

use AttrDefault as D;
use AttrType as T;

const AXIS_LAST: &[AttrSpec] = &[a("axis", T::Int, D::Int(-1))];
const REDUCE: &[AttrSpec] = &[
    a("axis", T::Ints, D::Computed("all axes")),
    a("keepdim", T::Bool, D::Bool(false)),
];
const CONV: &[AttrSpec] = &[
    a("stride", T::Sizes, D::Int(1)),
    a("padding", T::Padding, D::Int(0)),
    a("dilation", T::Sizes, D::Int(1)),
    a("groups", T::Size, D::Int(1)),
];
const CONV1D: &[AttrSpec] = &[
    a("stride", T::Sizes, D::Int(1)),
    a("padding", T::Padding, D::Int(0)),
    a("dilation", T::Sizes, D::Int(1)),
    a("groups", T::Size, D::Int(1)),
    a("causal", T::Bool, D::Bool(false)),
];
const CONVT: &[AttrSpec] = &[
    a("stride", T::Sizes, D::Int(1)),
    a("padding", T::Padding, D::Int(0)),
    a("output_padding", T::Sizes, D::Int(0)),
    a("dilation", T::Sizes, D::Int(1)),
    a("groups", T::Size, D::Int(1)),
];
const MAXPOOL: &[AttrSpec] = &[
    a("kernel", T::Sizes, D::Required),
    a("stride", T::Sizes, D::Computed("the kernel")),
    a("padding", T::Padding, D::Int(0)),
];
const AVGPOOL: &[AttrSpec] = &[
    a("kernel", T::Sizes, D::Required),
    a("stride", T::Sizes, D::Computed("the kernel")),
    a("padding", T::Padding, D::Int(0)),
    a("count_include_pad", T::Bool, D::Bool(true)),
];
const U: (usize, usize) = (1, 1);
const B: (usize, usize) = (2, 2);

/// Every surface op.
pub static OPS: &[OpSpec] = &[
    // Unary elementwise.
    op("neg", "x", U, &[], "y", "negation `-x`", "y = neg(x)"),
    op("abs", "x", U, &[], "y", "absolute value", "y = abs(x)"),
    op("relu", "x", U, &[], "y", "`max(x, 0)`", "y = relu(x)"),
    op("exp", "x", U, &[], "y", "exponential", "y = exp(x)"),
    op("log", "x", U, &[], "y", "natural logarithm", "y = log(x)"),
    op("sqrt", "x", U, &[], "y", "square root", "y = sqrt(x)"),
    op("rsqrt", "x", U, &[], "y", "`1 / sqrt(x)`", "y = rsqrt(x)"),
    op(
        "sigmoid",
        "x",
        U,
        &[],
        "y",
        "logistic `1 / (1 + exp(-x))`",
        "y = sigmoid(x)",
    ),
    op(
        "tanh",
        "x",
        U,
        &[],
        "y",
        "hyperbolic tangent",
        "y = tanh(x)",
    ),
    op(
        "softplus",
        "x",
        U,
        &[],
        "y",
        "`log(1 + exp(x))`",
        "y = softplus(x)",
    ),
    op(
        "not",
        "x",
        U,
        &[],
        "y",
        "logical not (bool)",
        "y = not(mask)",
    ),
    op(
        "gelu",
        "x",
        U,
        &[a(
            "approximate",
            T::Choice(&["none", "tanh"]),
            D::Str("none"),
        )],
        "y",
        "GELU, exact (erf) or tanh approximation",
        "y = gelu(x, approximate=\"tanh\")",
    ),
    op(
        "gelu_tanh",
        "x",
        U,
        &[],
        "y",
        "GELU, tanh approximation",
        "y = gelu_tanh(x)",
    ),
    op(
        "leaky_relu",
        "x",
        U,
        &[a("alpha", T::Float, D::Float(0.01))],
        "y",
        "`x` if positive else `alpha * x`",
        "y = leaky_relu(x, alpha=0.2)",
    ),
    op(
        "elu",
        "x",
        U,
        &[a("alpha", T::Float, D::Float(1.0))],
        "y",
        "`x` if positive else `alpha * (exp(x) - 1)`",
        "y = elu(x)",
    ),
    op(
        "clamp",
        "x",
        U,
        &[
            a("min", T::Float, D::Float(f64::NEG_INFINITY)),
            a("max", T::Float, D::Float(f64::INFINITY)),
        ],
        "y",
        "clip to `[min, max]` (give at least one)",
        "y = clamp(x, min=0, max=6)",
    ),
    // Binary elementwise with broadcasting.
    op("add", "a, b", B, &[], "y", "`a + b`", "y = add(a, b)"),
    op("sub", "a, b", B, &[], "y", "`a - b`", "y = sub(a, b)"),
    op("mul", "a, b", B, &[], "y", "`a * b`", "y = mul(a, b)"),
    op("div", "a, b", B, &[], "y", "`a / b`", "y = div(a, b)"),
    op("pow", "a, b", B, &[], "y", "`a ** b`", "y = pow(a, 2)"),
    op(
        "maximum",
        "a, b",
        B,
        &[],
        "y",
        "elementwise maximum",
        "y = maximum(a, b)",
    ),
    op(
        "minimum",
        "a, b",
        B,
        &[],
        "y",
        "elementwise minimum",
        "y = minimum(a, b)",
    ),
    op("eq", "a, b", B, &[], "y", "`a == b` (bool)", "m = eq(a, b)"),
    op("ne", "a, b", B, &[], "y", "`a != b` (bool)", "m = ne(a, b)"),
    op("lt", "a, b", B, &[], "y", "`a < b` (bool)", "m = lt(a, b)"),
    op("le", "a, b", B, &[], "y", "`a <= b` (bool)", "m = le(a, b)"),
    op("gt", "a, b", B, &[], "y", "`a > b` (bool)", "m = gt(a, 0)"),
    op("ge", "a, b", B, &[], "y", "`a >= b` (bool)", "m = ge(a, b)"),
    op(
        "and",
        "a, b",
        B,
        &[],
        "y",
        "logical and (bool)",
        "m = and(m1, m2)",
    ),
    op(
        "or",
        "a, b",
        B,
        &[],
        "y",
        "logical or (bool)",
        "m = or(m1, m2)",
    ),
    op(
        "where",
        "cond, a, b",
        (3, 3),
        &[],
        "y",
        "`a` where `cond` else `b`",
        "y = where(x > 0, x, 0)",
    ),
    op(
        "cast",
        "x",
        U,
        &[a("to", T::DType, D::Required)],
        "y",
        "convert the element type",
        "y = cast(labels, to=f32)",
    ),
    // Linear algebra.
    op(
        "matmul",
        "a, b",
        B,
        &[],
        "y",
        "numpy matmul (also `a @ b`; 1-D operands allowed)",
        "y = matmul(a, b)",
    ),
    op(
        "linear",
        "x, w, b?",
        (2, 3),
        &[],
        "y",
        "`x @ transpose(w) + b` with PyTorch weight `w [out, in]`",
        "y = linear(x, w, b)",
    ),
    // Convolution and pooling.
    op(
        "conv1d",
        "x [N, C, L], w [O, C/groups, K], b? [O]",
        (2, 3),
        CONV1D,
        "y",
        "1-D convolution; `causal=true` pads `(K-1)*dilation` on the left",
        "y = conv1d(x, w, b, dilation=2, causal=true)",
    ),
    op(
        "conv2d",
        "x [N, C, H, W], w [O, C/groups, KH, KW], b? [O]",
        (2, 3),
        CONV,
        "y",
        "2-D convolution; padding `p`, `[ph, pw]`, `[top, bottom, left, right]`, \"same\" or \"valid\"",
        "y = conv2d(x, w, b, stride=2, padding=\"same\")",
    ),
    op(
        "conv_transpose1d",
        "x [N, Cin, L], w [Cin, Cout/groups, K], b? [Cout]",
        (2, 3),
        CONVT,
        "y",
        "1-D transposed convolution",
        "y = conv_transpose1d(x, w, stride=2)",
    ),
    op(
        "conv_transpose2d",
        "x [N, Cin, H, W], w [Cin, Cout/groups, KH, KW], b? [Cout]",
        (2, 3),
        CONVT,
        "y",
        "2-D transposed convolution",
        "y = conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)",
    ),
    op(
        "max_pool1d",
        "x [N, C, L]",
        U,
        MAXPOOL,
        "y",
        "1-D max pooling",
        "y = max_pool1d(x, kernel=2)",
    ),
    op(
        "max_pool2d",
        "x [N, C, H, W]",
        U,
        MAXPOOL,
        "y",
        "2-D max pooling",
        "y = max_pool2d(x, kernel=3, stride=2, padding=1)",
    ),
    op(
        "avg_pool1d",
        "x [N, C, L]",
        U,
        AVGPOOL,
        "y",
        "1-D average pooling",
        "y = avg_pool1d(x, kernel=2)",
    ),
    op(
        "avg_pool2d",
        "x [N, C, H, W]",
        U,
        AVGPOOL,
        "y",
        "2-D average pooling",
        "y = avg_pool2d(x, kernel=2, count_include_pad=false)",
    ),
    op(
        "global_avg_pool",
        "x [N, C, *spatial]",
        U,
        &[],
        "y",
        "mean over all spatial dims, kept as size 1",
        "y = global_avg_pool(x)",
    ),
    // Reductions and normalisations.
    op(
        "sum",
        "x",
        U,
        REDUCE,
        "y",
        "sum over axes",
        "s = sum(x, axis=[0, 2])",
    ),
    op(
        "mean",
        "x",
        U,
        REDUCE,
        "y",
        "mean over axes",
        "m = mean(x, axis=-1, keepdim=true)",
    ),
    op(
        "max",
        "x",
        U,
        REDUCE,
        "y",
        "maximum over axes",
        "m = max(x)",
    ),
    op(
        "min",
        "x",
        U,
        REDUCE,
        "y",
        "minimum over axes",
        "m = min(x, axis=1)",
    ),
    op(
        "argmax",
        "x",
        U,
        &[
            a("axis", T::Int, D::Int(-1)),
            a("keepdim", T::Bool, D::Bool(false)),
        ],
        "y (i64)",
        "index of the maximum (first on ties)",
        "pred = argmax(logits)",
    ),
    op(
        "softmax",
        "x",
        U,
        AXIS_LAST,
        "y",
        "softmax along `axis`",
        "p = softmax(x)",
    ),
    op(
        "log_softmax",
        "x",
        U,
        AXIS_LAST,
        "y",
        "log-softmax along `axis`",
        "lp = log_softmax(x, axis=1)",
    ),
    // Shape ops.
    op(
        "reshape",
        "x",
        U,
        &[a("shape", T::Shape, D::Required)],
        "y",
        "same elements, new shape (one `-1` is inferred; named dims allowed)",
        "y = reshape(x, shape=[B, -1])",
    ),
    op(
        "flatten",
        "x",
        U,
        &[a("axis", T::Int, D::Int(1))],
        "y",
        "reshape to `[prod(dims[:axis]), prod(dims[axis:])]`",
        "y = flatten(x)",
    ),
    op(
        "transpose",
        "x",
        U,
        &[a("perm", T::Ints, D::Computed("reversed axes"))],
        "y",
        "permute dims: output dim `i` is input dim `perm[i]`",
        "y = transpose(x, perm=[0, 2, 1])",
    ),
    op(
        "permute",
        "x",
        U,
        &[a("perm", T::Ints, D::Computed("reversed axes"))],
        "y",
        "alias of `transpose`",
        "y = permute(x, perm=[1, 0])",
    ),
    op(
        "broadcast_to",
        "x",
        U,
        &[a("shape", T::Shape, D::Required)],
        "y",
        "broadcast to a shape (numpy rules)",
        "y = broadcast_to(b, shape=[B, 10])",
    ),
    op(
        "concat",
        "x1, x2, ...",
        (1, usize::MAX),
        &[a("axis", T::Int, D::Int(0))],
        "y",
        "join along `axis`",
        "y = concat(a, b, axis=1)",
    ),
    op(
        "slice",
        "x",
        U,
        &[
            a("axis", T::Ints, D::Computed("none (whole tensor)")),
            a("start", T::Ints, D::Int(0)),
            a("end", T::Ints, D::Computed("the dim size")),
            a("step", T::Ints, D::Int(1)),
        ],
        "y",
        "Python slicing per listed axis (negative indices, clamping, step >= 1)",
        "y = slice(x, axis=1, start=-3, end=-1)",
    ),
    op(
        "gather",
        "x, indices (i64)",
        B,
        &[a("axis", T::Int, D::Int(0))],
        "y",
        "take along `axis`: shape `x[:axis] + indices + x[axis+1:]`",
        "y = gather(x, idx, axis=1)",
    ),
    op(
        "embedding",
        "weight [V, E], indices (i64)",
        B,
        &[],
        "y",
        "rows of `weight` (gather along axis 0)",
        "e = embedding(table, tokens)",
    ),
    op(
        "one_hot",
        "indices (i64)",
        U,
        &[a("depth", T::Size, D::Required)],
        "y (f32)",
        "one-hot encoding, new last dim of size `depth`",
        "t = one_hot(labels, depth=10)",
    ),
    op(
        "batchnorm",
        "x [N, C, ...], gamma, beta, mean, var",
        (5, 5),
        &[
            a("eps", T::Float, D::Float(1e-5)),
            a("momentum", T::Float, D::Float(0.1)),
            a("training", T::Bool, D::Bool(false)),
        ],
        "y (training: y, new_mean, new_var)",
        "batch normalisation over channel axis 1",
        "y = batchnorm(x, g, b, rm, rv)",
    ),
    op(
        "layernorm",
        "x, gamma, beta",
        (3, 3),
        &[
            a("axis", T::Int, D::Int(-1)),
            a("eps", T::Float, D::Float(1e-5)),
        ],
        "y",
        "layer normalisation over dims `axis..`",
        "y = layernorm(x, g, b)",
    ),
    op(
        "dropout",
        "x",
        U,
        &[
            a("p", T::Float, D::Float(0.5)),
            a("seed", T::Seed, D::Int(0)),
            a("training", T::Bool, D::Bool(false)),
        ],
        "y",
        "inverted dropout with a seeded mask (identity unless `training`)",
        "y = dropout(x, p=0.1, seed=7, training=true)",
    ),
    op(
        "mse_loss",
        "pred, target",
        B,
        &[],
        "loss []",
        "mean squared error",
        "l = mse_loss(y, t)",
    ),
    op(
        "cross_entropy",
        "logits [N, C], labels [N] (i64)",
        B,
        &[],
        "loss []",
        "mean softmax cross-entropy",
        "l = cross_entropy(logits, labels)",
    ),
    // Recurrent layers (PyTorch layouts).
    op(
        "rnn",
        "x [T, B, I], h0 [B, H], w_ih [H, I], w_hh [H, H], b_ih [H], b_hh [H]",
        (6, 6),
        &[],
        "y [T, B, H], h_n",
        "tanh RNN over a sequence",
        "ys, hn = rnn(x, h0, w_ih, w_hh, b_ih, b_hh)",
    ),
    op(
        "lstm",
        "x [T, B, I], h0, c0 [B, H], w_ih [4H, I], w_hh [4H, H], b_ih, b_hh [4H]",
        (7, 7),
        &[],
        "y [T, B, H], h_n, c_n",
        "LSTM over a sequence (gates i, f, g, o)",
        "ys, hn, cn = lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)",
    ),
    op(
        "gru",
        "x [T, B, I], h0 [B, H], w_ih [3H, I], w_hh [3H, H], b_ih, b_hh [3H]",
        (6, 6),
        &[],
        "y [T, B, H], h_n",
        "GRU over a sequence (gates r, z, n)",
        "ys, hn = gru(x, h0, w_ih, w_hh, b_ih, b_hh)",
    ),
    op(
        "rnn_cell",
        "x [B, I], h [B, H], w_ih, w_hh, b_ih, b_hh",
        (6, 6),
        &[],
        "h1",
        "one tanh RNN step",
        "h1 = rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh)",
    ),
    op(
        "lstm_cell",
        "x [B, I], h, c [B, H], w_ih, w_hh, b_ih, b_hh",
        (7, 7),
        &[],
        "h1, c1",
        "one LSTM step",
        "h1, c1 = lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)",
    ),
    op(
        "gru_cell",
        "x [B, I], h [B, H], w_ih, w_hh, b_ih, b_hh",
        (6, 6),
        &[],
        "h1",
        "one GRU step",
        "h1 = gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)",
    ),
    op(
        "grid_lstm",
        "x [Hg, Wg, B, F], w1 [F+2H, 4H], b1 [4H], w2 [F+2H, 4H], b2 [4H]",
        (5, 5),
        &[],
        "y [Hg, Wg, B, 2H], h_vert, m_vert [Wg, B, H], h_hor, m_hor [Hg, B, H]",
        "2-D grid LSTM",
        "y, hv, mv, hh, mh = grid_lstm(x, w1, b1, w2, b2)",
    ),
    // Attention.
    op(
        "attention",
        "q [.., L, E], k [.., S, E], v [.., S, Ev]",
        (3, 3),
        &[
            a("causal", T::Bool, D::Bool(false)),
            a("scale", T::Float, D::Computed("1/sqrt(E)")),
        ],
        "y [.., L, Ev]",
        "scaled dot-product attention",
        "y = attention(q, k, v, causal=true)",
    ),
    op(
        "multihead_attention",
        "query [L, N, E], key, value [S, N, E], in_w [3E, E], in_b [3E], out_w [E, E], out_b [E]",
        (7, 7),
        &[
            a("heads", T::Size, D::Required),
            a("causal", T::Bool, D::Bool(false)),
        ],
        "y [L, N, E]",
        "multi-head attention (PyTorch layout)",
        "y = multihead_attention(x, x, x, in_w, in_b, out_w, out_b, heads=4, causal=true)",
    ),
];

/// The op reference as a markdown table (kept verbatim in `docs/ir.md`).
pub fn reference_markdown() -> String {
    let mut s =
        String::from("| op | operands | attributes (default) | results | computes | example |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    for o in OPS {
        let attrs: Vec<String> = o
            .attrs
            .iter()
            .map(|a| format!("`{}` ({})", a.name, a.default.describe()))
            .collect();
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | `{}` |\n",
            o.name,
            o.operands,
            if attrs.is_empty() {
                "—".into()
            } else {
                attrs.join(", ")
            },
            o.results,
            o.summary,
            o.example.replace('|', "\\|"),
        ));
    }
    s
}
