//! Per-construct and per-op attribute parsing: the text elaborates to exactly
//! the expected normalised `Op`.

use dlc_ir::op::*;
use dlc_ir::syntax::{self, Dims};
use dlc_ir::types::DType;
use dlc_ir::{Graph, ValueId};

fn graph(body: &str) -> Graph {
    let src = format!("model m {{\n{body}\n}}\n");
    syntax::parse_graph(&src, &Dims::new()).unwrap_or_else(|d| panic!("{}", d.render("t.ir", &src)))
}

/// The op computing `y` in a model with the declarations `decls` and `y = expr`.
fn op(decls: &str, expr: &str) -> Op {
    let g = graph(&format!("{decls}\n  y = {expr}"));
    let y = g.lookup("y").unwrap();
    g.node(y.node).op.clone()
}

fn shape(g: &Graph, name: &str) -> Vec<usize> {
    g.ty(g.lookup(name).unwrap()).shape.clone()
}

const X3: &str = "  input x: f32[2, 3, 4]";
const IMG: &str = "  input x: f32[1, 2, 9, 9]\n  input w: f32[4, 2, 3, 3]\n  input b: f32[4]";
const SEQ: &str = "  input x: f32[1, 2, 16]\n  input w: f32[4, 2, 3]";

#[test]
fn infix_precedence_and_associativity() {
    let g = graph(
        "  input a: f32[2]\n  input b: f32[2]\n  y = a - b - a\n  z = -a ** 2\n  p = a ** b ** a\n  q = a + b * a\n  m = a < b\n",
    );
    let name = |n: &str| g.node(g.lookup(n).unwrap().node).op.clone();
    // (a - b) - a
    let y = g.lookup("y").unwrap();
    let lhs = g.operands(y.node)[0];
    assert_eq!(g.node(lhs.node).op, Op::Binary(BinaryOp::Sub));
    assert_eq!(g.operands(y.node)[1], g.lookup("a").unwrap());
    // -(a ** 2)
    assert_eq!(name("z"), Op::Unary(UnaryOp::Neg));
    // a ** (b ** a)
    let p = g.lookup("p").unwrap();
    assert_eq!(g.operands(p.node)[0], g.lookup("a").unwrap());
    assert_eq!(name("q"), Op::Binary(BinaryOp::Add));
    assert_eq!(name("m"), Op::Binary(BinaryOp::Lt));
    assert_eq!(g.ty(g.lookup("m").unwrap()).dtype, DType::Bool);
}

#[test]
fn weak_literals_take_the_tensor_dtype() {
    let g = graph(
        "  input x: f32[2]\n  input i: i64[2]\n  a = 1 - x\n  b = x * 0.5\n  c = i + 1\n  d = 2\n  e = 2.0\n  f = 1e3\n  g = x * (1 + 2)\n  h = where(x > 0, x, 0)\n  k = maximum(i, 3)\n  n = -1\n  t = true\n  w = where(x > 0, 1.5, 0)",
    );
    let dt = |n: &str| g.ty(g.lookup(n).unwrap()).dtype;
    for n in ["a", "b", "e", "f", "g", "h", "w"] {
        assert_eq!(dt(n), DType::F32, "{n}");
    }
    for n in ["c", "d", "k", "n"] {
        assert_eq!(dt(n), DType::I64, "{n}");
    }
    assert_eq!(dt("t"), DType::Bool);
    let n = g.lookup("n").unwrap();
    assert_eq!(
        g.node(n.node).op,
        Op::Const {
            value: ConstValue::Int(vec![-1])
        }
    );
    assert_eq!(shape(&g, "d"), Vec::<usize>::new());
}

#[test]
fn statements_continue_inside_brackets_and_alias() {
    let g = graph(
        "  input x: f32[2, 3]\n  y = softmax(\n    x,\n    axis=0,\n  )\n  z = y\n  output out = z, y",
    );
    assert_eq!(g.outputs()[0].name, "out");
    assert_eq!(g.outputs()[0].value, g.lookup("y").unwrap());
    assert_eq!(g.outputs()[1].name, "y");
}

#[test]
fn unary_and_activation_attributes() {
    assert_eq!(op(X3, "gelu(x)"), Op::Unary(UnaryOp::GeluErf));
    assert_eq!(
        op(X3, "gelu(x, approximate=\"tanh\")"),
        Op::Unary(UnaryOp::GeluTanh)
    );
    assert_eq!(op(X3, "gelu_tanh(x)"), Op::Unary(UnaryOp::GeluTanh));
    assert_eq!(op(X3, "leaky_relu(x)"), Op::LeakyRelu { alpha: 0.01 });
    assert_eq!(
        op(X3, "leaky_relu(x, alpha=0.2)"),
        Op::LeakyRelu { alpha: 0.2 }
    );
    assert_eq!(op(X3, "elu(x, alpha=2)"), Op::Elu { alpha: 2.0 });
    assert_eq!(
        op(X3, "clamp(x, min=0)"),
        Op::Clamp {
            min: 0.0,
            max: f64::INFINITY
        }
    );
    assert_eq!(
        op(X3, "clamp(x, max=6.0)"),
        Op::Clamp {
            min: f64::NEG_INFINITY,
            max: 6.0
        }
    );
    assert_eq!(
        op(X3, "clamp(x, min=-inf, max=inf)"),
        Op::Clamp {
            min: f64::NEG_INFINITY,
            max: f64::INFINITY
        }
    );
    assert_eq!(op(X3, "cast(x, to=i64)"), Op::Cast { to: DType::I64 });
    assert_eq!(op(X3, "not(x > 0)"), Op::Unary(UnaryOp::Not));
}

#[test]
fn matmul_and_linear() {
    let g = graph(
        "  input a: f32[3]\n  input m: f32[3, 4]\n  input n: f32[2, 4, 3]\n  y = a @ m\n  z = n @ a\n  s = a @ a\n  input w: f32[5, 3]\n  input b: f32[5]\n  l = linear(n, w, b)\n  l1 = linear(a, w)",
    );
    assert_eq!(shape(&g, "y"), vec![4]);
    assert_eq!(shape(&g, "z"), vec![2, 4]);
    assert_eq!(shape(&g, "s"), Vec::<usize>::new());
    assert_eq!(shape(&g, "l"), vec![2, 4, 5]);
    assert_eq!(shape(&g, "l1"), vec![5]);
    let l = g.lookup("l").unwrap();
    assert_eq!(g.node(l.node).op, Op::Binary(BinaryOp::Add));
    let mm = g.operands(l.node)[0];
    assert_eq!(g.node(mm.node).op, Op::MatMul);
    let wt = g.operands(mm.node)[1];
    assert_eq!(g.node(wt.node).op, Op::Transpose { perm: vec![1, 0] });
}

fn conv(s: &[usize], p: &[(usize, usize)], d: &[usize], g: usize) -> Op {
    Op::Conv(ConvAttrs {
        stride: s.to_vec(),
        padding: p.to_vec(),
        dilation: d.to_vec(),
        groups: g,
    })
}

#[test]
fn conv_padding_forms() {
    assert_eq!(
        op(IMG, "conv2d(x, w, b)"),
        conv(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1)
    );
    assert_eq!(
        op(IMG, "conv2d(x, w, stride=2, padding=1)"),
        conv(&[2, 2], &[(1, 1), (1, 1)], &[1, 1], 1)
    );
    assert_eq!(
        op(IMG, "conv2d(x, w, stride=[2, 1], padding=[1, 2])"),
        conv(&[2, 1], &[(1, 1), (2, 2)], &[1, 1], 1)
    );
    assert_eq!(
        op(IMG, "conv2d(x, w, padding=[0, 1, 2, 3])"),
        conv(&[1, 1], &[(0, 1), (2, 3)], &[1, 1], 1)
    );
    assert_eq!(
        op(IMG, "conv2d(x, w, padding=\"same\")"),
        conv(&[1, 1], &[(1, 1), (1, 1)], &[1, 1], 1)
    );
    assert_eq!(
        op(IMG, "conv2d(x, w, padding=\"same\", dilation=2)"),
        conv(&[1, 1], &[(2, 2), (2, 2)], &[2, 2], 1)
    );
    assert_eq!(
        op(IMG, "conv2d(x, w, padding=\"valid\")"),
        conv(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1)
    );
    let g = graph(&format!("{IMG}\n  y = conv2d(x, w, padding=\"same\")"));
    assert_eq!(shape(&g, "y"), vec![1, 4, 9, 9]);
    // "same" with an even kernel puts the extra padding after.
    let even = "  input x: f32[1, 2, 8]\n  input w: f32[4, 2, 4]";
    assert_eq!(
        op(even, "conv1d(x, w, padding=\"same\")"),
        conv(&[1], &[(1, 2)], &[1], 1)
    );
    assert_eq!(
        op(SEQ, "conv1d(x, w, padding=[2, 0])"),
        conv(&[1], &[(2, 0)], &[1], 1)
    );
    assert_eq!(
        op(SEQ, "conv1d(x, w, dilation=3, causal=true)"),
        conv(&[1], &[(6, 0)], &[3], 1)
    );
    assert_eq!(
        op(SEQ, "conv1d(x, w, causal=false, padding=1)"),
        conv(&[1], &[(1, 1)], &[1], 1)
    );
    let grouped = "  input x: f32[1, 4, 16]\n  input w: f32[4, 2, 3]";
    assert_eq!(
        op(grouped, "conv1d(x, w, groups=2, stride=2)"),
        conv(&[2], &[(0, 0)], &[1], 2)
    );
}

#[test]
fn conv_transpose_and_pooling() {
    let d = "  input x: f32[2, 4, 5, 5]\n  input w: f32[4, 3, 3, 3]";
    assert_eq!(
        op(
            d,
            "conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)"
        ),
        Op::ConvTranspose(ConvTransposeAttrs {
            stride: vec![2, 2],
            padding: vec![(1, 1), (1, 1)],
            output_padding: vec![1, 1],
            dilation: vec![1, 1],
            groups: 1
        })
    );
    let pool = |kind, k: &[usize], s: &[usize], p: &[(usize, usize)]| {
        Op::Pool(PoolAttrs {
            kind,
            kernel: k.to_vec(),
            stride: s.to_vec(),
            padding: p.to_vec(),
        })
    };
    assert_eq!(
        op(IMG, "max_pool2d(x, kernel=2)"),
        pool(PoolKind::Max, &[2, 2], &[2, 2], &[(0, 0), (0, 0)])
    );
    assert_eq!(
        op(
            IMG,
            "max_pool2d(x, kernel=[3, 2], stride=1, padding=[1, 0])"
        ),
        pool(PoolKind::Max, &[3, 2], &[1, 1], &[(1, 1), (0, 0)])
    );
    assert_eq!(
        op(
            IMG,
            "avg_pool2d(x, kernel=3, stride=2, padding=[1, 0, 0, 1], count_include_pad=false)"
        ),
        pool(
            PoolKind::Avg {
                count_include_pad: false
            },
            &[3, 3],
            &[2, 2],
            &[(1, 0), (0, 1)]
        )
    );
    assert_eq!(op(IMG, "global_avg_pool(x)"), Op::GlobalAvgPool);
    assert_eq!(
        op(SEQ, "max_pool1d(x, kernel=4)"),
        pool(PoolKind::Max, &[4], &[4], &[(0, 0)])
    );
}

#[test]
fn reductions_and_axes() {
    let red = |kind, axes: &[usize], keepdim| Op::Reduce {
        kind,
        axes: axes.to_vec(),
        keepdim,
    };
    assert_eq!(op(X3, "sum(x)"), red(ReduceKind::Sum, &[0, 1, 2], false));
    assert_eq!(
        op(X3, "mean(x, axis=-1, keepdim=true)"),
        red(ReduceKind::Mean, &[2], true)
    );
    assert_eq!(
        op(X3, "max(x, axis=[-1, 0])"),
        red(ReduceKind::Max, &[0, 2], false)
    );
    assert_eq!(op(X3, "min(x, axis=1)"), red(ReduceKind::Min, &[1], false));
    assert_eq!(
        op(X3, "argmax(x)"),
        Op::ArgMax {
            axis: 2,
            keepdim: false
        }
    );
    assert_eq!(
        op(X3, "argmax(x, axis=-3, keepdim=true)"),
        Op::ArgMax {
            axis: 0,
            keepdim: true
        }
    );
    assert_eq!(op(X3, "softmax(x)"), Op::Softmax { axis: 2 });
    assert_eq!(
        op(X3, "log_softmax(x, axis=-2)"),
        Op::LogSoftmax { axis: 1 }
    );
    // Size-1 dims are ordinary dims.
    assert_eq!(
        op("  input x: f32[1, 1]", "softmax(x, axis=0)"),
        Op::Softmax { axis: 0 }
    );
}

#[test]
fn shape_ops() {
    assert_eq!(
        op(X3, "reshape(x, shape=[6, -1])"),
        Op::Reshape { shape: vec![6, 4] }
    );
    assert_eq!(
        op(
            "  dim B = 2\n  input x: f32[B, 3, 4]",
            "reshape(x, shape=[B, -1])"
        ),
        Op::Reshape { shape: vec![2, 12] }
    );
    assert_eq!(op(X3, "flatten(x)"), Op::Reshape { shape: vec![2, 12] });
    assert_eq!(
        op(X3, "flatten(x, axis=0)"),
        Op::Reshape { shape: vec![1, 24] }
    );
    assert_eq!(
        op(X3, "flatten(x, axis=-1)"),
        Op::Reshape { shape: vec![6, 4] }
    );
    assert_eq!(
        op(X3, "transpose(x)"),
        Op::Transpose {
            perm: vec![2, 1, 0]
        }
    );
    assert_eq!(
        op(X3, "permute(x, perm=[0, -1, 1])"),
        Op::Transpose {
            perm: vec![0, 2, 1]
        }
    );
    assert_eq!(
        op(
            "  dim N = 5\n  input x: f32[3, 1]",
            "broadcast_to(x, shape=[N, 3, 4])"
        ),
        Op::BroadcastTo {
            shape: vec![5, 3, 4]
        }
    );
    assert_eq!(op(X3, "concat(x, x, axis=-1)"), Op::Concat { axis: 2 });
    let idx = format!("{X3}\n  input i: i64[5]");
    assert_eq!(op(&idx, "gather(x, i, axis=-2)"), Op::Gather { axis: 1 });
    assert_eq!(op(&idx, "embedding(x, i)"), Op::Gather { axis: 0 });
    assert_eq!(op(&idx, "one_hot(i, depth=7)"), Op::OneHot { depth: 7 });
}

#[test]
fn slices_follow_python() {
    let r = |start, end, step| SliceRange { start, end, step };
    let sl = |e: &str| match op("  input x: f32[4, 10]", e) {
        Op::Slice { ranges } => ranges,
        other => panic!("{other:?}"),
    };
    assert_eq!(sl("slice(x)"), vec![r(0, 4, 1), r(0, 10, 1)]);
    assert_eq!(
        sl("slice(x, axis=1, start=2, end=5)"),
        vec![r(0, 4, 1), r(2, 5, 1)]
    );
    assert_eq!(
        sl("slice(x, axis=-1, start=-3)"),
        vec![r(0, 4, 1), r(7, 10, 1)]
    );
    assert_eq!(
        sl("slice(x, axis=1, end=-1, step=3)"),
        vec![r(0, 4, 1), r(0, 9, 3)]
    );
    assert_eq!(
        sl("slice(x, axis=1, start=-100, end=100)"),
        vec![r(0, 4, 1), r(0, 10, 1)]
    );
    assert_eq!(
        sl("slice(x, axis=[0, 1], start=[1, 2], end=[3, 4])"),
        vec![r(1, 3, 1), r(2, 4, 1)]
    );
    assert_eq!(
        sl("slice(x, axis=[0, 1], start=1)"),
        vec![r(1, 4, 1), r(1, 10, 1)]
    );
    let g = graph("  input x: f32[4, 10]\n  y = slice(x, axis=1, start=1, step=4)");
    assert_eq!(shape(&g, "y"), vec![4, 3]);
}

#[test]
fn norms_dropout_losses_recurrent_attention() {
    let bn = "  input x: f32[4, 3, 5]\n  input c: f32[3]";
    assert_eq!(
        op(bn, "batchnorm(x, c, c, c, c)"),
        Op::BatchNorm {
            eps: 1e-5,
            momentum: 0.1,
            training: false
        }
    );
    let g = graph(&format!(
        "{bn}\n  y, m, v = batchnorm(x, c, c, c, c, eps=1e-3, momentum=0.2, training=true)"
    ));
    let y = g.lookup("v").unwrap();
    assert_eq!(y.result, 2);
    assert_eq!(
        g.node(y.node).op,
        Op::BatchNorm {
            eps: 1e-3,
            momentum: 0.2,
            training: true
        }
    );
    let ln = "  input x: f32[2, 3, 4]\n  input g: f32[3, 4]";
    assert_eq!(
        op(ln, "layernorm(x, g, g, axis=-2, eps=1e-6)"),
        Op::LayerNorm { axis: 1, eps: 1e-6 }
    );
    assert_eq!(
        op(
            X3,
            "dropout(x, p=0.1, seed=18446744073709551615, training=true)"
        ),
        Op::Dropout {
            p: 0.1,
            seed: u64::MAX,
            training: true
        }
    );
    assert_eq!(op(X3, "mse_loss(x, x)"), Op::MseLoss);
    let att = "  input q: f32[2, 4, 16]";
    assert_eq!(
        op(att, "attention(q, q, q)"),
        Op::Attention {
            causal: false,
            scale: 0.25
        }
    );
    assert_eq!(
        op(att, "attention(q, q, q, causal=true, scale=1)"),
        Op::Attention {
            causal: true,
            scale: 1.0
        }
    );
    let cell = "  input x: f32[2, 3]\n  input h: f32[2, 4]\n  input wi: f32[16, 3]\n  input wh: f32[16, 4]\n  input b: f32[16]";
    let g = graph(&format!(
        "{cell}\n  h1, c1 = lstm_cell(x, h, h, wi, wh, b, b)"
    ));
    let h1 = g.lookup("h1").unwrap();
    assert_eq!(
        g.node(h1.node).op,
        Op::Recurrent {
            cell: CellKind::Lstm,
            sequence: false
        }
    );
    assert_eq!(
        g.lookup("c1").unwrap(),
        ValueId {
            node: h1.node,
            result: 1
        }
    );
}

#[test]
fn quoted_names_and_comments_everywhere() {
    let g = graph(
        "  # leading\n  input `my x`: f32[2]   # trailing\n\n  `input` = relu(`my x`)  # more\n  output `input`",
    );
    assert_eq!(g.outputs()[0].name, "input");
}
