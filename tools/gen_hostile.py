#!/usr/bin/env python3
"""Writes the hostile-input corpus under tests/hostile/ (run from the repo root).

Each file starts with comment lines the driver (tests/hostile.rs) reads:
  # hostile: what the file tests
  # args: the dlc command line ({file} is the file; default `check {file}`)
  # expect: a substring stderr must contain (the exit code must be 2)
Files that cannot carry a header (empty, binary) get a sidecar `<file>.expect`.
"""
import os, struct, zipfile, io

OUT = "tests/hostile"

def model(body, decls=""):
    return "model hostile {\n" + decls + body + "}\n"

def write(name, text, what, expect, args=None, binary=False):
    path = os.path.join(OUT, name)
    head = f"# hostile: {what}\n"
    if args:
        head += f"# args: {args}\n"
    head += f"# expect: {expect}\n"
    if binary:
        with open(path, "wb") as f:
            f.write(text)
        with open(path + ".expect", "w") as f:
            f.write(head)
    else:
        with open(path, "w") as f:
            f.write(head + text)

# --- one invalid attribute (or an unknown one) for every op of the op table ---
X = "  input x: f32[2, 3]\n"
B = "  input m: bool[2, 3]\n"
RNN_DECLS = "  input s: f32[4, 1, 3]\n  input h: f32[1, 5]\n  input wi: f32[5, 3]\n  input wh: f32[5, 5]\n  input b: f32[5]\n"
LSTM_DECLS = "  input s: f32[4, 1, 3]\n  input h: f32[1, 5]\n  input wi: f32[20, 3]\n  input wh: f32[20, 5]\n  input b: f32[20]\n"
GRU_DECLS = "  input s: f32[4, 1, 3]\n  input h: f32[1, 5]\n  input wi: f32[15, 3]\n  input wh: f32[15, 5]\n  input b: f32[15]\n"
ATTR = {
    # op: (declarations, call, expected message substring)
    "neg": (X, "neg(x, alpha=1)", "unknown attribute `alpha`"),
    "abs": (X, "abs(x, axis=0)", "unknown attribute `axis`"),
    "relu": (X, "relu(x, inplace=true)", "unknown attribute `inplace`"),
    "exp": (X, "exp(x, base=2)", "unknown attribute `base`"),
    "log": (X, "log(x, base=10)", "unknown attribute `base`"),
    "sqrt": (X, "sqrt(x, eps=1e-5)", "unknown attribute `eps`"),
    "rsqrt": (X, "rsqrt(x, eps=1e-5)", "unknown attribute `eps`"),
    "sigmoid": (X, "sigmoid(x, scale=2)", "unknown attribute `scale`"),
    "tanh": (X, "tanh(x, scale=2)", "unknown attribute `scale`"),
    "softplus": (X, "softplus(x, beta=2)", "unknown attribute `beta`"),
    "not": (B, "not(m, axis=1)", "unknown attribute `axis`"),
    "gelu": (X, 'gelu(x, approximate="sigmoid")', "approximate"),
    "gelu_tanh": (X, "gelu_tanh(x, approximate=1)", "unknown attribute `approximate`"),
    "leaky_relu": (X, 'leaky_relu(x, alpha="big")', "alpha"),
    "elu": (X, "elu(x, alpha=[1, 2])", "alpha"),
    "clamp": (X, "clamp(x, min=3, max=1)", "clamp"),
    "add": (X, "add(x, x, alpha=2)", "unknown attribute `alpha`"),
    "sub": (X, "sub(x, x, alpha=2)", "unknown attribute `alpha`"),
    "mul": (X, "mul(x, x, axis=0)", "unknown attribute `axis`"),
    "div": (X, 'div(x, x, rounding_mode="floor")', "unknown attribute `rounding_mode`"),
    "pow": (X, "pow(x, 2, modulo=3)", "unknown attribute `modulo`"),
    "maximum": (X, "maximum(x, x, axis=0)", "unknown attribute `axis`"),
    "minimum": (X, "minimum(x, x, axis=0)", "unknown attribute `axis`"),
    "eq": (X, "eq(x, x, tol=0.1)", "unknown attribute `tol`"),
    "ne": (X, "ne(x, x, tol=0.1)", "unknown attribute `tol`"),
    "lt": (X, "lt(x, x, strict=true)", "unknown attribute `strict`"),
    "le": (X, "le(x, x, strict=true)", "unknown attribute `strict`"),
    "gt": (X, "gt(x, x, strict=true)", "unknown attribute `strict`"),
    "ge": (X, "ge(x, x, strict=true)", "unknown attribute `strict`"),
    "and": (B, "and(m, m, axis=0)", "unknown attribute `axis`"),
    "or": (B, "or(m, m, axis=0)", "unknown attribute `axis`"),
    "where": (X + B, "where(m, x, x, axis=0)", "unknown attribute `axis`"),
    "cast": (X, "cast(x, to=f16)", "f16"),
    "matmul": (X, "matmul(x, transpose(x), transpose_a=true)", "unknown attribute `transpose_a`"),
    "linear": ("  input x: f32[2, 3]\n  input w: f32[4, 3]\n", "linear(x, w, bias=false)", "unknown attribute `bias`"),
    "conv1d": ("  input x: f32[1, 2, 8]\n  input w: f32[4, 2, 3]\n", "conv1d(x, w, stride=0)", "stride"),
    "conv2d": ("  input x: f32[1, 2, 6, 6]\n  input w: f32[4, 2, 3, 3]\n", "conv2d(x, w, groups=3)", "groups"),
    "conv_transpose1d": ("  input x: f32[1, 2, 8]\n  input w: f32[2, 4, 3]\n", "conv_transpose1d(x, w, stride=2, output_padding=5)", "output_padding"),
    "conv_transpose2d": ("  input x: f32[1, 2, 6, 6]\n  input w: f32[2, 4, 3, 3]\n", "conv_transpose2d(x, w, dilation=[1, 0])", "dilation"),
    "max_pool1d": ("  input x: f32[1, 2, 8]\n", "max_pool1d(x, kernel=2, padding=2)", "padding"),
    "max_pool2d": ("  input x: f32[1, 2, 6, 6]\n", "max_pool2d(x, kernel=9)", "kernel"),
    "avg_pool1d": ("  input x: f32[1, 2, 8]\n", "avg_pool1d(x)", "kernel"),
    "avg_pool2d": ("  input x: f32[1, 2, 6, 6]\n", "avg_pool2d(x, kernel=2, count_include_pad=2)", "count_include_pad"),
    "global_avg_pool": ("  input x: f32[1, 2, 6, 6]\n", "global_avg_pool(x, keepdim=false)", "unknown attribute `keepdim`"),
    "sum": (X, "sum(x, axis=2)", "axis"),
    "mean": (X, "mean(x, axis=[0, 0])", "axis"),
    "max": (X, "max(x, axis=-3)", "axis"),
    "min": (X, "min(x, keepdim=1)", "keepdim"),
    "argmax": (X, "argmax(x, axis=[0, 1])", "axis"),
    "softmax": (X, "softmax(x, axis=5)", "axis"),
    "log_softmax": (X, "log_softmax(x, axis=1.5)", "axis"),
    "reshape": (X, "reshape(x, shape=[4, 2])", "reshape"),
    "flatten": (X, "flatten(x, axis=7)", "axis"),
    "transpose": (X, "transpose(x, perm=[0, 0])", "perm"),
    "permute": (X, "permute(x, perm=[1])", "perm"),
    "broadcast_to": (X, "broadcast_to(x, shape=[2, 4])", "broadcast"),
    "concat": (X, "concat(x, x, axis=2)", "axis"),
    "slice": (X, "slice(x, axis=1, start=0, end=3, step=0)", "step"),
    "gather": ("  input x: f32[2, 3]\n  input i: i64[4]\n", "gather(x, i, axis=2)", "axis"),
    "embedding": ("  input w: f32[10, 4]\n  input i: i64[3]\n", "embedding(w, i, axis=1)", "unknown attribute `axis`"),
    "one_hot": ("  input i: i64[3]\n", "one_hot(i, depth=0)", "depth"),
    "batchnorm": ("  input x: f32[2, 3, 4]\n  input g: f32[3]\n", "batchnorm(x, g, g, g, g, momentum=true)", "momentum"),
    "layernorm": ("  input x: f32[2, 3]\n  input g: f32[3]\n", "layernorm(x, g, g, eps=-1)", "eps"),
    "dropout": (X, "dropout(x, p=1.5, training=true)", "p"),
    "mse_loss": (X, 'mse_loss(x, x, reduction="sum")', "unknown attribute `reduction`"),
    "cross_entropy": ("  input x: f32[2, 3]\n  input l: i64[2]\n", "cross_entropy(x, l, label_smoothing=0.1)", "unknown attribute `label_smoothing`"),
    "rnn": (RNN_DECLS, "rnn(s, h, wi, wh, b, b, nonlinearity=\"relu\")", "unknown attribute `nonlinearity`"),
    "lstm": (LSTM_DECLS, "lstm(s, h, h, wi, wh, b, b, bidirectional=true)", "unknown attribute `bidirectional`"),
    "gru": (GRU_DECLS, "gru(s, h, wi, wh, b, b, num_layers=2)", "unknown attribute `num_layers`"),
    "rnn_cell": ("  input s: f32[1, 3]\n  input h: f32[1, 5]\n  input wi: f32[5, 3]\n  input wh: f32[5, 5]\n  input b: f32[5]\n",
                 "rnn_cell(s, h, wi, wh, b, b, bias=false)", "unknown attribute `bias`"),
    "lstm_cell": ("  input s: f32[1, 3]\n  input h: f32[1, 5]\n  input wi: f32[20, 3]\n  input wh: f32[20, 5]\n  input b: f32[20]\n",
                  "lstm_cell(s, h, h, wi, wh, b, b, proj_size=2)", "unknown attribute `proj_size`"),
    "gru_cell": ("  input s: f32[1, 3]\n  input h: f32[1, 5]\n  input wi: f32[15, 3]\n  input wh: f32[15, 5]\n  input b: f32[15]\n",
                 "gru_cell(s, h, wi, wh, b, b, bias=false)", "unknown attribute `bias`"),
    "grid_lstm": ("  input s: f32[2, 2, 1, 3]\n  input w: f32[13, 20]\n  input b: f32[20]\n",
                  "grid_lstm(s, w, b, w, b, hidden=5)", "unknown attribute `hidden`"),
    "attention": ("  input q: f32[2, 4, 8]\n", 'attention(q, q, q, scale="auto")', "scale"),
    "multihead_attention": ("  input q: f32[4, 1, 8]\n  input wi: f32[24, 8]\n  input bi: f32[24]\n  input wo: f32[8, 8]\n  input bo: f32[8]\n",
                            "multihead_attention(q, q, q, wi, bi, wo, bo, heads=3)", "heads"),
    "erf": (X, "erf(x, approximate=true)", "unknown attribute `approximate`"),
    "conv1d_weight_grad": ("  input x: f32[1, 2, 8]\n  input dy: f32[1, 4, 6]\n", "conv1d_weight_grad(x, dy, kernel=3, stride=0)", "stride"),
    "conv2d_weight_grad": ("  input x: f32[1, 2, 6, 6]\n  input dy: f32[1, 4, 4, 4]\n", "conv2d_weight_grad(x, dy, kernel=3, groups=3)", "groups"),
    "max_pool1d_grad": ("  input x: f32[1, 2, 8]\n  input dy: f32[1, 2, 4]\n", "max_pool1d_grad(x, dy, kernel=2, padding=2)", "padding"),
    "max_pool2d_grad": ("  input x: f32[1, 2, 6, 6]\n  input dy: f32[1, 2, 3, 3]\n", "max_pool2d_grad(x, dy, kernel=9)", "kernel"),
    "avg_pool1d_grad": ("  input x: f32[1, 2, 8]\n  input dy: f32[1, 2, 4]\n", "avg_pool1d_grad(x, dy)", "kernel"),
    "avg_pool2d_grad": ("  input x: f32[1, 2, 6, 6]\n  input dy: f32[1, 2, 3, 3]\n", "avg_pool2d_grad(x, dy, kernel=2, count_include_pad=2)", "count_include_pad"),
    "gather_grad": ("  input dy: f32[4, 3]\n  input i: i64[4]\n", "gather_grad(dy, i, size=0)", "size"),
    "rnn_grad": (RNN_DECLS + "  input dy: f32[4, 1, 5]\n", 'rnn_grad(s, h, wi, wh, b, b, dy, h, nonlinearity="relu")', "unknown attribute `nonlinearity`"),
    "lstm_grad": (LSTM_DECLS + "  input dy: f32[4, 1, 5]\n", "lstm_grad(s, h, h, wi, wh, b, b, dy, h, h, bidirectional=true)", "unknown attribute `bidirectional`"),
    "gru_grad": (GRU_DECLS + "  input dy: f32[4, 1, 5]\n", "gru_grad(s, h, wi, wh, b, b, dy, h, num_layers=2)", "unknown attribute `num_layers`"),
    "rnn_cell_grad": ("  input s: f32[1, 3]\n  input h: f32[1, 5]\n  input wi: f32[5, 3]\n  input wh: f32[5, 5]\n  input b: f32[5]\n",
                      "rnn_cell_grad(s, h, wi, wh, b, b, h, bias=false)", "unknown attribute `bias`"),
    "lstm_cell_grad": ("  input s: f32[1, 3]\n  input h: f32[1, 5]\n  input wi: f32[20, 3]\n  input wh: f32[20, 5]\n  input b: f32[20]\n",
                       "lstm_cell_grad(s, h, h, wi, wh, b, b, h, h, proj_size=2)", "unknown attribute `proj_size`"),
    "gru_cell_grad": ("  input s: f32[1, 3]\n  input h: f32[1, 5]\n  input wi: f32[15, 3]\n  input wh: f32[15, 5]\n  input b: f32[15]\n",
                      "gru_cell_grad(s, h, wi, wh, b, b, h, bias=false)", "unknown attribute `bias`"),
    "grid_lstm_grad": ("  input s: f32[2, 2, 1, 3]\n  input w: f32[13, 20]\n  input b: f32[20]\n  input dy: f32[2, 2, 1, 10]\n  input dh: f32[2, 1, 5]\n",
                       "grid_lstm_grad(s, w, b, w, b, dy, dh, dh, dh, dh, hidden=5)", "unknown attribute `hidden`"),
    "attention_grad": ("  input q: f32[2, 4, 8]\n", 'attention_grad(q, q, q, q, scale="auto")', "scale"),
}

MULTI = {"lstm": "y, hn, cn", "gru": "y, hn", "rnn": "y, hn", "lstm_cell": "y, c1",
         "grid_lstm": "y, hv, mv, hh, mh",
         "rnn_grad": "y, g1, g2, g3, g4, g5", "lstm_grad": "y, g1, g2, g3, g4, g5, g6", "gru_grad": "y, g1, g2, g3, g4, g5",
         "rnn_cell_grad": "y, g1, g2, g3, g4, g5", "lstm_cell_grad": "y, g1, g2, g3, g4, g5, g6",
         "gru_cell_grad": "y, g1, g2, g3, g4, g5", "grid_lstm_grad": "y, g1, g2, g3, g4", "attention_grad": "y, g1, g2"}

def attr_files():
    for op, (decls, call, expect) in ATTR.items():
        lhs = MULTI.get(op, "y")
        body = f"  {lhs} = {call}\n  output y\n"
        write(f"attr_{op}.ir", model(body, decls), f"an invalid attribute of `{op}`", expect)

# --- syntax ---
SYNTAX = [
    ("syntax_no_model.ir", "input x: f32[2]\noutput x\n", "missing `model` header", "expected"),
    ("syntax_unclosed_brace.ir", "model m {\n  input x: f32[2]\n  output x\n", "a missing closing brace", "expected"),
    ("syntax_extra_brace.ir", "model m {\n  input x: f32[2]\n  output x\n}\n}\n", "a stray closing brace", "expected"),
    ("syntax_two_models.ir", "model a {\n  input x: f32[2]\n  output x\n}\nmodel b {\n  input x: f32[2]\n  output x\n}\n", "two models in one file", "expected"),
    ("syntax_missing_rhs.ir", model("  y =\n  output y\n", X), "an assignment without a value", "expected"),
    ("syntax_dangling_op.ir", model("  y = x +\n  output y\n", X), "a binary operator without its right operand", "expected"),
    ("syntax_unclosed_paren.ir", model("  y = relu(x\n  output y\n", X), "an unclosed call", "expected"),
    ("syntax_unclosed_bracket.ir", "model m {\n  input x: f32[2, 3\n  output x\n}\n", "an unclosed shape", "expected"),
    ("syntax_bad_char.ir", model("  y = x $ x\n  output y\n", X), "a character that is no token", "$"),
    ("syntax_unterminated_string.ir", model('  y = gelu(x, approximate="tanh)\n  output y\n', X), "an unterminated string", "string"),
    ("syntax_keyword_as_name.ir", model("  input model: f32[2]\n  output model\n"), "a keyword used as a name", "expected"),
    ("syntax_output_unknown.ir", model("  output nothing\n", X), "an output naming nothing", "nothing"),
    ("syntax_empty_call.ir", model("  y = relu()\n  output y\n", X), "a call without operands", "relu"),
    ("syntax_too_many_operands.ir", model("  y = relu(x, x)\n  output y\n", X), "a call with too many operands", "relu"),
    ("syntax_unknown_op.ir", model("  y = frobnicate(x)\n  output y\n", X), "an unknown op", "frobnicate"),
    ("syntax_double_comma.ir", model("  y = add(x,, x)\n  output y\n", X), "an empty argument", "expected"),
    ("syntax_attr_twice.ir", model("  y = softmax(x, axis=0, axis=1)\n  output y\n", X), "an attribute given twice", "axis"),
    ("syntax_positional_after_kw.ir", model("  y = concat(x, axis=0, x)\n  output y\n", X), "an operand after a keyword", "after a keyword"),
    ("syntax_bad_dtype.ir", "model m {\n  input x: f64[2]\n  output x\n}\n", "an unknown dtype", "f64"),
    ("syntax_missing_type.ir", "model m {\n  input x\n  output x\n}\n", "an input without a type", "expected"),
    ("syntax_bad_init.ir", "model m {\n  param w: f32[2] = xavier_magic\n  output w\n}\n", "an unknown initialiser", "xavier_magic"),
    ("syntax_only_comments.ir", "# nothing but a comment\n# and another\n", "a file with only comments", "expected"),
    ("syntax_nul_byte.ir", "model m {\n  input x: f32[2]\x00\n  output x\n}\n", "a NUL byte", "expected"),
    ("syntax_crlf_garbage.ir", "model m {\r\n  input x: f32[2] @@\r\n  output x\r\n}\r\n", "garbage with CRLF line ends", "expected"),
    ("syntax_unbalanced_destructure.ir", model("  a, = relu(x)\n  output a\n", X), "a trailing comma in a destructuring", "expected"),
    ("syntax_destructure_count.ir", model("  a, b = relu(x)\n  output a\n", X), "more names than results", "relu"),
    ("syntax_dim_no_value.ir", "model m {\n  dim B =\n  input x: f32[B]\n  output x\n}\n", "a dim without a size", "expected"),
    ("syntax_unicode_ident.ir", model("  ÿ = relu(x)\n  output ÿ\n", X), "a non-ASCII name", "expected"),
    ("syntax_redefined.ir", model("  y = relu(x)\n  y = neg(x)\n  output y\n", X), "a name defined twice", "`y`"),
]

NAMES = [
    ("names_self_reference.ir", model("  y = relu(y)\n  output y\n", X), "a value defined in terms of itself", "`y`"),
    ("names_cycle.ir", model("  a = relu(b)\n  b = neg(a)\n  output b\n", X), "a cycle through two names", "undefined name `b`"),
    ("names_cycle3.ir", model("  a = relu(c)\n  b = neg(a)\n  c = abs(b)\n  output c\n", X), "a cycle through three names", "`c`"),
    ("names_use_before_def.ir", model("  a = relu(b)\n  b = neg(x)\n  output a\n", X), "a use before the definition", "`b`"),
    ("names_undefined.ir", model("  y = relu(z)\n  output y\n", X), "an undefined name", "`z`"),
    ("names_input_twice.ir", "model m {\n  input x: f32[2]\n  input x: f32[3]\n  output x\n}\n", "an input declared twice", "`x`"),
    ("names_output_twice.ir", model("  output x, x\n", X), "the same output twice", "x"),
    ("names_dim_undefined.ir", "model m {\n  input x: f32[N, 2]\n  output x\n}\n", "an unbound named dim", "N"),
    ("names_dim_twice.ir", "model m {\n  dim B = 2\n  dim B = 3\n  input x: f32[B]\n  output x\n}\n", "a dim declared twice", "B"),
]

SHAPES = [
    ("shape_zero_dim.ir", "model m {\n  input x: f32[0, 3]\n  output x\n}\n", "a zero-size dim", "0"),
    ("shape_zero_dim_param.ir", "model m {\n  param w: f32[3, 0] = zeros\n  output w\n}\n", "a zero-size parameter dim", "0"),
    ("shape_negative_dim.ir", "model m {\n  input x: f32[-3]\n  output x\n}\n", "a negative dim", "expected"),
    ("shape_overflow_numel.ir", "model m {\n  input x: f32[4294967296, 4294967296]\n  output x\n}\n", "an element count that overflows 64 bits", "limit"),
    ("shape_huge_numel.ir", "model m {\n  input x: f32[100000, 100000, 100]\n  output x\n}\n", "an absurd element count", "limit"),
    ("shape_dim_u64_max.ir", "model m {\n  input x: f32[18446744073709551615]\n  output x\n}\n", "a dim of 2^64 - 1", "limit"),
    ("shape_dim_too_big_literal.ir", "model m {\n  input x: f32[99999999999999999999999999]\n  output x\n}\n", "a dim that is no 64-bit integer", "99999999999999999999999999"),
    ("shape_rank_100.ir", "model m {\n  input x: f32[" + ", ".join(["1"] * 100) + "]\n  output x\n}\n", "rank 100", "rank"),
    ("shape_reshape_overflow.ir", model("  y = reshape(x, shape=[4294967296, 4294967296, 0])\n  output y\n", X), "a reshape to an overflowing shape", "reshape"),
    ("shape_broadcast_huge.ir", model("  y = broadcast_to(x, shape=[100000, 100000, 2, 3])\n  output y\n", X), "a broadcast to an absurd size", "limit"),
    ("shape_matmul_mismatch.ir", model("  y = x @ x\n  output y\n", X), "a matmul of mismatched shapes", "[2, 3]"),
    ("shape_broadcast_mismatch.ir", "model m {\n  input a: f32[2, 3]\n  input b: f32[4]\n  y = a + b\n  output y\n}\n", "operands that do not broadcast", "[4]"),
    ("shape_dim_bound_zero.ir", "model m {\n  dim B = 0\n  input x: f32[B]\n  output x\n}\n", "a named dim bound to zero", "0"),
    ("shape_conv_kernel_too_big.ir", "model m {\n  input x: f32[1, 2, 4, 4]\n  input w: f32[3, 2, 9, 9]\n  y = conv2d(x, w)\n  output y\n}\n", "a convolution kernel larger than its input", "conv2d"),
    ("shape_one_hot_huge.ir", "model m {\n  input i: i64[1000]\n  y = one_hot(i, depth=1000000000000)\n  output y\n}\n", "a one-hot of absurd depth", "limit"),
    ("shape_concat_huge.ir", "model m {\n  input x: f32[100000, 100000]\n  y = concat(x, x)\n  output y\n}\n", "a concat beyond the size limit", "limit"),
]

DTYPES = [
    ("dtype_matmul_i64.ir", "model m {\n  input a: i64[2, 2]\n  y = a @ a\n  output y\n}\n", "a matmul of integers", "i64"),
    ("dtype_log_bool.ir", model("  y = log(m)\n  output y\n", B), "a logarithm of booleans", "bool"),
    ("dtype_add_mixed.ir", "model m {\n  input a: f32[2]\n  input b: i64[2]\n  y = a + b\n  output y\n}\n", "an addition of f32 and i64", "i64"),
    ("dtype_and_float.ir", model("  y = and(x, x)\n  output y\n", X), "a logical and of floats", "f32"),
    ("dtype_where_cond_float.ir", model("  y = where(x, x, x)\n  output y\n", X), "a select on a float condition", "where"),
    ("dtype_gather_float_index.ir", model("  y = gather(x, x)\n  output y\n", X), "gather with float indices", "gather"),
    ("dtype_cross_entropy_float_labels.ir", model("  l = cross_entropy(x, x)\n  output l\n", X), "cross-entropy with float labels", "cross_entropy"),
    ("dtype_conv_i64.ir", "model m {\n  input x: i64[1, 1, 4]\n  input w: i64[1, 1, 2]\n  y = conv1d(x, w)\n  output y\n}\n", "a convolution of integers", "i64"),
    ("dtype_softmax_i64.ir", "model m {\n  input a: i64[2, 3]\n  y = softmax(a)\n  output y\n}\n", "a softmax of integers", "i64"),
]

LITERALS = [
    ("literal_float_overflow.ir", model("  y = x * 1e400\n  output y\n", X), "a float literal beyond f64", "1e400"),
    ("literal_int_overflow.ir", model("  y = slice(x, axis=1, start=99999999999999999999999)\n  output y\n", X), "an integer literal beyond i64", "is too large"),
    ("literal_huge_seed.ir", model("  y = dropout(x, seed=18446744073709551616, training=true)\n  output y\n", X), "a seed beyond 2^64 - 1", "is too large"),
    ("literal_long_name.ir", model("  " + "n" * 200000 + " = relu(x)\n  output y\n", X), "a 200000-character name", "`y`"),
    ("literal_long_string.ir", model('  y = gelu(x, approximate="' + "t" * 100000 + '")\n  output y\n', X), "a 100000-character string", "approximate"),
    ("literal_const_count.ir", "model m {\n  const c: f32[3] = [1, 2]\n  output c\n}\n", "a constant with too few values", "c"),
    ("literal_const_nested_mismatch.ir", "model m {\n  const c: f32[2, 2] = [[1, 2], [3]]\n  output c\n}\n", "a ragged constant", "c"),
    ("literal_const_nan_int.ir", "model m {\n  const c: i64[2] = [nan, 1]\n  output c\n}\n", "NaN in an integer constant", "constant needs integers"),
    ("literal_const_huge.ir", "model m {\n  const c: f32[100000, 100000] = 0\n  output c\n}\n", "a huge constant", "limit"),
    ("literal_init_nan.ir", "model m {\n  param w: f32[2] = normal(nan, 1)\n  output w\n}\n", "an initialiser with NaN", "normal"),
    ("literal_uniform_reversed.ir", "model m {\n  param w: f32[2] = uniform(1, -1)\n  output w\n}\n", "uniform bounds reversed", "uniform"),
]

def nesting():
    n = 100000
    write("deep_parens.ir", model("  y = " + "(" * n + "x" + ")" * n + "\n  output y\n", X), "100000 nested parentheses", "nest")
    write("deep_calls.ir", model("  y = " + "relu(" * n + "x" + ")" * n + "\n  output y\n", X), "100000 nested calls", "nest")
    write("deep_list.ir", "model m {\n  const c: f32[1] = " + "[" * n + "1" + "]" * n + "\n  output c\n}\n", "a list literal nested 100000 deep", "nest")
    write("deep_unary_minus.ir", model("  y = " + "-" * n + "x\n  output y\n", X), "100000 unary minus signs", "nest")
    write("long_infix_chain.ir", model("  y = x" + " + x" * 20000 + "\n  output y\n", X), "a 20000-term sum", "nest")

def misc():
    write("empty.ir", b"", "an empty file", "expected", binary=True)
    write("non_utf8.ir", b"model m {\n  input x: f32[2]\n  y = relu(x) \xff\xfe\n  output y\n}\n", "invalid UTF-8", "UTF-8", binary=True)
    write("latin1_comment.ir", b"# caf\xe9\nmodel m {\n  input x: f32[2]\n  output x\n}\n", "a Latin-1 comment", "UTF-8", binary=True)
    write("binary_garbage.ir", bytes(range(256)) * 4, "random binary data", "UTF-8", binary=True)
    write("utf16.ir", "model m {\n  input x: f32[2]\n  output x\n}\n".encode("utf-16"), "a UTF-16 file", "UTF-8", binary=True)
    # Bad --dim bindings on a valid model.
    write("dim_binding_huge.ir", "model m {\n  dim B = 2\n  input x: f32[B, B, B]\n  output x\n}\n", "a dim bound to an absurd size", "limit", args="check {file} --dim B=10000000")

# --- bad .npz inputs for a small valid model ---
NPZ_MODEL = "tests/hostile/npz/model.ir"

def npy(arr_descr, shape, data, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (arr_descr, "True" if fortran else "False", shape)
    header = header.encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data

def npz(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in members:
            z.writestr(name, content)
    return buf.getvalue()

def f32(n, v=0.5):
    return struct.pack("<%df" % n, *([v] * n))

def npz_files():
    os.makedirs(os.path.join(OUT, "npz"), exist_ok=True)
    with open(NPZ_MODEL, "w") as f:
        f.write("# The model the bad .npz files are fed to (not itself hostile).\n"
                "model small {\n  input x: f32[2, 3]\n  input labels: i64[2]\n"
                "  y = relu(x)\n  l = cross_entropy(x, labels)\n  output y, l\n}\n")
    good_x = npy("<f4", "(2, 3)", f32(6))
    good_l = npy("<i8", "(2,)", struct.pack("<2q", 0, 1))
    run = "run tests/hostile/npz/model.ir --inputs {file}"
    cases = [
        ("garbage.npz", b"this is not a zip archive", "not a valid npz"),
        ("truncated.npz", npz([("x.npy", good_x), ("labels.npy", good_l)])[:60], "not a valid npz"),
        ("empty.npz", b"", "not a valid npz"),
        ("wrong_dtype.npz", npz([("x.npy", good_x), ("labels.npy", npy("<f4", "(2,)", f32(2)))]), "labels"),
        ("wrong_shape.npz", npz([("x.npy", npy("<f4", "(3, 2)", f32(6))), ("labels.npy", good_l)]), "f32[2, 3]"),
        ("missing_input.npz", npz([("x.npy", good_x)]), "labels"),
        ("extra_input.npz", npz([("x.npy", good_x), ("labels.npy", good_l), ("bogus.npy", good_x)]), "bogus"),
        ("label_out_of_range.npz", npz([("x.npy", good_x), ("labels.npy", npy("<i8", "(2,)", struct.pack("<2q", 0, 7)))]), "label"),
        ("negative_label.npz", npz([("x.npy", good_x), ("labels.npy", npy("<i8", "(2,)", struct.pack("<2q", -1, 0)))]), "label"),
        ("huge_header_shape.npz", npz([("x.npy", npy("<f4", "(1000000000000, 1000000000000)", f32(6))), ("labels.npy", good_l)]), "overflow"),
        ("short_data.npz", npz([("x.npy", npy("<f4", "(2, 3)", f32(2))), ("labels.npy", good_l)]), "not a valid npz"),
        ("bad_magic.npz", npz([("x.npy", b"NOTNUMPY" + good_x[8:]), ("labels.npy", good_l)]), "not a valid npz"),
        ("bad_header.npz", npz([("x.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <<<<\n" + f32(6)), ("labels.npy", good_l)]), "not a valid npz"),
        ("complex_dtype.npz", npz([("x.npy", npy("<c8", "(2, 3)", f32(12))), ("labels.npy", good_l)]), "missing input `x`"),
        ("fortran_order.npz", npz([("x.npy", npy("<f4", "(3, 2)", f32(6), fortran=True)), ("labels.npy", good_l)]), "f32[2, 3]"),
        ("zero_size.npz", npz([("x.npy", npy("<f4", "(0, 3)", b"")), ("labels.npy", good_l)]), "f32[2, 3]"),
        ("not_npz_extension.txt", npz([("x.npy", good_x), ("labels.npy", good_l)]), "unknown tensor file type"),
    ]
    for name, data, expect in cases:
        write(os.path.join("npz", name), data, f"a bad input file: {name}", expect, args=run, binary=True)

def main():
    os.makedirs(OUT, exist_ok=True)
    attr_files()
    for group in (SYNTAX, NAMES, SHAPES, DTYPES, LITERALS):
        for name, text, what, expect in group:
            write(name, text, what, expect)
    nesting()
    misc()
    npz_files()

main()
