//! `elaborate(parse(print(g))) == g` for every Op variant with non-default
//! attributes, anonymous (`_N`) names, quoted names, renamed outputs, every
//! initialiser and constants with extreme values.

use std::collections::BTreeSet;

use dlc_ir::op::*;
use dlc_ir::syntax::{self, Dims};
use dlc_ir::types::{DType, TensorType};
use dlc_ir::{Graph, Init, ValueId};

fn f(s: &[usize]) -> TensorType {
    TensorType::f32(s.to_vec())
}
fn i(s: &[usize]) -> TensorType {
    TensorType::new(DType::I64, s.to_vec())
}
fn b(s: &[usize]) -> TensorType {
    TensorType::new(DType::Bool, s.to_vec())
}

/// A graph with one input per operand type, the op (anonymous), and its results as outputs.
fn case(op: Op, ins: &[TensorType]) -> Graph {
    let mut g = Graph::new("case");
    let vs: Vec<ValueId> = ins
        .iter()
        .enumerate()
        .map(|(k, t)| {
            g.add_source(Op::Input, format!("x{k}"), t.clone(), None)
                .unwrap()
        })
        .collect();
    let n = g
        .add_anon(op.clone(), &vs)
        .unwrap_or_else(|e| panic!("{op:?}: {e}"));
    for r in 0..g.node(n).names.len() {
        let v = ValueId {
            node: n,
            result: r as u32,
        };
        g.add_output(format!("y{r}"), v);
    }
    g
}

fn assert_roundtrip(g: &Graph) {
    dlc_ir::verify(g).unwrap();
    let text = syntax::print(g);
    let g2 = syntax::parse_graph(&text, &Dims::new()).unwrap_or_else(|d| {
        panic!(
            "printed text does not parse:\n{text}\n{}",
            d.render("p.ir", &text)
        )
    });
    assert_eq!(&g2, g, "round trip changed the graph:\n{text}");
    assert_eq!(syntax::print(&g2), text);
}

/// Names every variant; no wildcard, so a new variant must be added to the cases.
fn variant(op: &Op) -> &'static str {
    match op {
        Op::Input => "Input",
        Op::Param { .. } => "Param",
        Op::Const { .. } => "Const",
        Op::Unary(_) => "Unary",
        Op::Binary(_) => "Binary",
        Op::LeakyRelu { .. } => "LeakyRelu",
        Op::Elu { .. } => "Elu",
        Op::Clamp { .. } => "Clamp",
        Op::Where => "Where",
        Op::Cast { .. } => "Cast",
        Op::MatMul => "MatMul",
        Op::Conv(_) => "Conv",
        Op::ConvTranspose(_) => "ConvTranspose",
        Op::Pool(_) => "Pool",
        Op::GlobalAvgPool => "GlobalAvgPool",
        Op::Reduce { .. } => "Reduce",
        Op::ArgMax { .. } => "ArgMax",
        Op::Softmax { .. } => "Softmax",
        Op::LogSoftmax { .. } => "LogSoftmax",
        Op::Reshape { .. } => "Reshape",
        Op::Transpose { .. } => "Transpose",
        Op::BroadcastTo { .. } => "BroadcastTo",
        Op::Concat { .. } => "Concat",
        Op::Slice { .. } => "Slice",
        Op::Gather { .. } => "Gather",
        Op::OneHot { .. } => "OneHot",
        Op::BatchNorm { .. } => "BatchNorm",
        Op::LayerNorm { .. } => "LayerNorm",
        Op::Dropout { .. } => "Dropout",
        Op::MseLoss => "MseLoss",
        Op::CrossEntropy => "CrossEntropy",
        Op::Recurrent { .. } => "Recurrent",
        Op::GridLstm => "GridLstm",
        Op::Attention { .. } => "Attention",
        Op::MultiHeadAttention { .. } => "MultiHeadAttention",
        Op::ConvWeightGrad { .. } => "ConvWeightGrad",
        Op::PoolGrad(_) => "PoolGrad",
        Op::GatherGrad { .. } => "GatherGrad",
        Op::RecurrentGrad { .. } => "RecurrentGrad",
        Op::GridLstmGrad => "GridLstmGrad",
        Op::AttentionGrad { .. } => "AttentionGrad",
    }
}
const VARIANTS: usize = 41;

fn cases() -> Vec<(Op, Vec<TensorType>)> {
    let mut v: Vec<(Op, Vec<TensorType>)> = Vec::new();
    for u in UnaryOp::ALL {
        let t = if u == UnaryOp::Not {
            b(&[2, 3])
        } else {
            f(&[2, 3])
        };
        v.push((Op::Unary(u), vec![t]));
    }
    for op in BinaryOp::ALL {
        let (x, y) = if op.is_logical() {
            (b(&[2, 3]), b(&[3]))
        } else {
            (f(&[2, 1, 3]), f(&[4, 1]))
        };
        v.push((Op::Binary(op), vec![x, y]));
    }
    v.push((Op::Binary(BinaryOp::Add), vec![i(&[3]), i(&[])]));
    let conv = |s: Vec<usize>, p: Vec<(usize, usize)>, d: Vec<usize>, g: usize| {
        Op::Conv(ConvAttrs {
            stride: s,
            padding: p,
            dilation: d,
            groups: g,
        })
    };
    let convt = |s: Vec<usize>, p: Vec<(usize, usize)>, o: Vec<usize>, d: Vec<usize>, g: usize| {
        Op::ConvTranspose(ConvTransposeAttrs {
            stride: s,
            padding: p,
            output_padding: o,
            dilation: d,
            groups: g,
        })
    };
    let pool = |kind, k: Vec<usize>, s: Vec<usize>, p: Vec<(usize, usize)>| {
        Op::Pool(PoolAttrs {
            kind,
            kernel: k,
            stride: s,
            padding: p,
        })
    };
    // Every cell kind as a sequence op (x: [T, B, F]) and a single step (x: [B, F]),
    // hidden size 4, 3 features: x, h0, (c0 for an LSTM), w_ih, w_hh, b_ih, b_hh.
    for cell in [CellKind::Rnn, CellKind::Gru, CellKind::Lstm] {
        let gates = 4 * cell.gates();
        for sequence in [true, false] {
            let x = if sequence { f(&[5, 2, 3]) } else { f(&[2, 3]) };
            let mut args = vec![x, f(&[2, 4])];
            if cell.has_cell_state() {
                args.push(f(&[2, 4]));
            }
            args.extend([f(&[gates, 3]), f(&[gates, 4]), f(&[gates]), f(&[gates])]);
            v.push((Op::Recurrent { cell, sequence }, args));
        }
    }
    let x = f(&[2, 3, 4]);
    v.extend([
        (Op::LeakyRelu { alpha: 0.2 }, vec![x.clone()]),
        (Op::LeakyRelu { alpha: 0.01 }, vec![x.clone()]),
        (Op::Elu { alpha: 0.5 }, vec![x.clone()]),
        (
            Op::Clamp {
                min: -1.5,
                max: f64::INFINITY,
            },
            vec![x.clone()],
        ),
        (
            Op::Clamp {
                min: f64::NEG_INFINITY,
                max: 6.0,
            },
            vec![x.clone()],
        ),
        (
            Op::Clamp {
                min: f64::NEG_INFINITY,
                max: f64::INFINITY,
            },
            vec![x.clone()],
        ),
        (
            Op::Clamp {
                min: 0.1,
                max: 0.30000000000000004,
            },
            vec![x.clone()],
        ),
        (Op::Where, vec![b(&[2, 1, 4]), x.clone(), f(&[])]),
        (Op::Cast { to: DType::I64 }, vec![x.clone()]),
        (Op::Cast { to: DType::Bool }, vec![i(&[3])]),
        (Op::Cast { to: DType::F32 }, vec![b(&[3])]),
        (Op::MatMul, vec![f(&[2, 3, 4]), f(&[4, 5])]),
        (
            conv(vec![2], vec![(3, 1)], vec![2], 2),
            vec![f(&[1, 4, 20]), f(&[6, 2, 3])],
        ),
        (
            conv(vec![1], vec![(0, 0)], vec![1], 1),
            vec![f(&[1, 4, 20]), f(&[6, 4, 3]), f(&[6])],
        ),
        (
            conv(vec![2, 1], vec![(1, 2), (0, 3)], vec![1, 2], 1),
            vec![f(&[2, 3, 9, 9]), f(&[4, 3, 3, 3]), f(&[4])],
        ),
        (
            conv(vec![2, 2], vec![(1, 1), (2, 2)], vec![1, 1], 1),
            vec![f(&[2, 3, 9, 9]), f(&[4, 3, 3, 3])],
        ),
        (
            conv(vec![1, 1], vec![(1, 1), (1, 1)], vec![3, 3], 3),
            vec![f(&[1, 3, 9, 9]), f(&[6, 1, 3, 3])],
        ),
        (
            convt(vec![2, 2], vec![(1, 1), (1, 1)], vec![1, 1], vec![1, 1], 1),
            vec![f(&[2, 4, 5, 5]), f(&[4, 3, 3, 3]), f(&[3])],
        ),
        (
            convt(vec![3], vec![(0, 1)], vec![2], vec![1], 2),
            vec![f(&[1, 4, 6]), f(&[4, 1, 3])],
        ),
        (
            convt(vec![1, 2], vec![(0, 0), (1, 0)], vec![0, 1], vec![2, 1], 1),
            vec![f(&[1, 2, 5, 5]), f(&[2, 2, 3, 3])],
        ),
        (
            pool(PoolKind::Max, vec![3, 2], vec![2, 1], vec![(1, 0), (1, 1)]),
            vec![f(&[1, 2, 8, 8])],
        ),
        (
            pool(PoolKind::Max, vec![2, 2], vec![2, 2], vec![(0, 0), (0, 0)]),
            vec![f(&[1, 2, 8, 8])],
        ),
        (
            pool(
                PoolKind::Avg {
                    count_include_pad: false,
                },
                vec![3, 3],
                vec![1, 1],
                vec![(1, 1), (1, 1)],
            ),
            vec![f(&[1, 2, 8, 8])],
        ),
        (
            pool(
                PoolKind::Avg {
                    count_include_pad: true,
                },
                vec![2],
                vec![1],
                vec![(1, 0)],
            ),
            vec![f(&[1, 2, 8])],
        ),
        (
            pool(PoolKind::Max, vec![2], vec![3], vec![(0, 0)]),
            vec![f(&[1, 2, 8])],
        ),
        (Op::GlobalAvgPool, vec![f(&[2, 3, 4, 5])]),
        (
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![0, 2],
                keepdim: true,
            },
            vec![x.clone()],
        ),
        (
            Op::Reduce {
                kind: ReduceKind::Mean,
                axes: vec![0, 1, 2],
                keepdim: false,
            },
            vec![x.clone()],
        ),
        (
            Op::Reduce {
                kind: ReduceKind::Max,
                axes: vec![1],
                keepdim: false,
            },
            vec![x.clone()],
        ),
        (
            Op::Reduce {
                kind: ReduceKind::Min,
                axes: vec![],
                keepdim: false,
            },
            vec![x.clone()],
        ),
        (
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![],
                keepdim: true,
            },
            vec![f(&[])],
        ),
        (
            Op::ArgMax {
                axis: 0,
                keepdim: true,
            },
            vec![x.clone()],
        ),
        (
            Op::ArgMax {
                axis: 2,
                keepdim: false,
            },
            vec![x.clone()],
        ),
        (Op::Softmax { axis: 0 }, vec![x.clone()]),
        (Op::Softmax { axis: 2 }, vec![x.clone()]),
        (Op::LogSoftmax { axis: 1 }, vec![x.clone()]),
        (Op::Reshape { shape: vec![6, 4] }, vec![x.clone()]),
        (Op::Reshape { shape: vec![] }, vec![f(&[1, 1])]),
        (
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            vec![x.clone()],
        ),
        (
            Op::Transpose {
                perm: vec![2, 1, 0],
            },
            vec![x.clone()],
        ),
        (
            Op::BroadcastTo {
                shape: vec![3, 2, 4],
            },
            vec![f(&[2, 4])],
        ),
        (
            Op::Concat { axis: 1 },
            vec![x.clone(), f(&[2, 5, 4]), x.clone()],
        ),
        (Op::Concat { axis: 0 }, vec![x.clone()]),
        (
            Op::Slice {
                ranges: vec![
                    SliceRange {
                        start: 0,
                        end: 2,
                        step: 1,
                    },
                    SliceRange {
                        start: 1,
                        end: 3,
                        step: 1,
                    },
                    SliceRange {
                        start: 0,
                        end: 4,
                        step: 3,
                    },
                ],
            },
            vec![x.clone()],
        ),
        (
            Op::Slice {
                ranges: vec![
                    SliceRange {
                        start: 1,
                        end: 2,
                        step: 1,
                    },
                    SliceRange {
                        start: 0,
                        end: 3,
                        step: 1,
                    },
                    SliceRange {
                        start: 0,
                        end: 4,
                        step: 1,
                    },
                ],
            },
            vec![x.clone()],
        ),
        (
            Op::Slice {
                ranges: vec![SliceRange {
                    start: 0,
                    end: 3,
                    step: 1,
                }],
            },
            vec![f(&[3])],
        ),
        (Op::Gather { axis: 1 }, vec![x.clone(), i(&[5, 2])]),
        (Op::Gather { axis: 0 }, vec![f(&[10, 4]), i(&[3])]),
        (Op::OneHot { depth: 5 }, vec![i(&[2, 3])]),
        (
            Op::BatchNorm {
                eps: 1e-3,
                momentum: 0.2,
                training: true,
            },
            vec![f(&[4, 3, 5]), f(&[3]), f(&[3]), f(&[3]), f(&[3])],
        ),
        (
            Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
                training: false,
            },
            vec![f(&[4, 3]), f(&[3]), f(&[3]), f(&[3]), f(&[3])],
        ),
        (
            Op::LayerNorm { axis: 1, eps: 1e-6 },
            vec![x.clone(), f(&[3, 4]), f(&[3, 4])],
        ),
        (
            Op::LayerNorm { axis: 2, eps: 1e-5 },
            vec![x.clone(), f(&[4]), f(&[4])],
        ),
        (
            Op::Dropout {
                p: 0.25,
                seed: u64::MAX,
                training: true,
            },
            vec![x.clone()],
        ),
        (
            Op::Dropout {
                p: 0.5,
                seed: 0,
                training: false,
            },
            vec![x.clone()],
        ),
        (Op::MseLoss, vec![x.clone(), x.clone()]),
        (Op::CrossEntropy, vec![f(&[4, 10]), i(&[4])]),
        (
            Op::GridLstm,
            vec![
                f(&[2, 3, 2, 5]),
                f(&[13, 16]),
                f(&[16]),
                f(&[13, 16]),
                f(&[16]),
            ],
        ),
        (
            Op::Attention {
                causal: true,
                scale: 0.3,
            },
            vec![f(&[2, 4, 8]), f(&[2, 6, 8]), f(&[2, 6, 3])],
        ),
        (
            Op::Attention {
                causal: false,
                scale: 1.0 / 8f64.sqrt(),
            },
            vec![f(&[4, 8]), f(&[6, 8]), f(&[6, 8])],
        ),
        (
            Op::MultiHeadAttention {
                heads: 2,
                causal: true,
            },
            vec![
                f(&[4, 2, 8]),
                f(&[5, 2, 8]),
                f(&[5, 2, 8]),
                f(&[24, 8]),
                f(&[24]),
                f(&[8, 8]),
                f(&[8]),
            ],
        ),
        (
            Op::MultiHeadAttention {
                heads: 1,
                causal: false,
            },
            vec![
                f(&[4, 2, 8]),
                f(&[4, 2, 8]),
                f(&[4, 2, 8]),
                f(&[24, 8]),
                f(&[24]),
                f(&[8, 8]),
                f(&[8]),
            ],
        ),
    ]);
    v.extend(backward_cases());
    v
}

/// The backward ops, with non-default attributes.
fn backward_cases() -> Vec<(Op, Vec<TensorType>)> {
    let wgrad = |stride: Vec<usize>, padding, kernel: Vec<usize>, groups| Op::ConvWeightGrad {
        conv: ConvAttrs {
            dilation: vec![1; stride.len()],
            stride,
            padding,
            groups,
        },
        kernel,
    };
    let pool = |kind, k: usize, s: usize, p: (usize, usize)| {
        Op::PoolGrad(PoolAttrs {
            kind,
            kernel: vec![k, k],
            stride: vec![s, s],
            padding: vec![p, p],
        })
    };
    let rgrad = |cell, sequence| Op::RecurrentGrad { cell, sequence };
    vec![
        (
            wgrad(vec![2, 1], vec![(1, 1), (0, 2)], vec![3, 2], 2),
            vec![f(&[2, 4, 7, 5]), f(&[2, 6, 3, 6])],
        ),
        (
            wgrad(vec![1], vec![(2, 0)], vec![3], 1),
            vec![f(&[2, 3, 9]), f(&[2, 5, 9])],
        ),
        (
            pool(PoolKind::Max, 3, 2, (1, 1)),
            vec![f(&[2, 3, 7, 7]), f(&[2, 3, 4, 4])],
        ),
        (
            pool(
                PoolKind::Avg {
                    count_include_pad: false,
                },
                2,
                1,
                (1, 0),
            ),
            vec![f(&[1, 2, 4, 4]), f(&[1, 2, 4, 4])],
        ),
        (
            Op::PoolGrad(PoolAttrs {
                kind: PoolKind::Max,
                kernel: vec![2],
                stride: vec![2],
                padding: vec![(0, 0)],
            }),
            vec![f(&[1, 2, 6]), f(&[1, 2, 3])],
        ),
        (
            Op::GatherGrad { axis: 1, size: 7 },
            vec![f(&[2, 3, 4, 5]), i(&[3, 4])],
        ),
        (
            Op::GatherGrad { axis: 0, size: 9 },
            vec![f(&[5, 4]), i(&[5])],
        ),
        (
            rgrad(CellKind::Lstm, true),
            vec![
                f(&[5, 2, 3]),
                f(&[2, 4]),
                f(&[2, 4]),
                f(&[16, 3]),
                f(&[16, 4]),
                f(&[16]),
                f(&[16]),
                f(&[5, 2, 4]),
                f(&[2, 4]),
                f(&[2, 4]),
            ],
        ),
        (
            rgrad(CellKind::Gru, false),
            vec![
                f(&[2, 3]),
                f(&[2, 4]),
                f(&[12, 3]),
                f(&[12, 4]),
                f(&[12]),
                f(&[12]),
                f(&[2, 4]),
            ],
        ),
        (
            Op::GridLstmGrad,
            vec![
                f(&[2, 3, 2, 5]),
                f(&[13, 16]),
                f(&[16]),
                f(&[13, 16]),
                f(&[16]),
                f(&[2, 3, 2, 8]),
                f(&[3, 2, 4]),
                f(&[3, 2, 4]),
                f(&[2, 2, 4]),
                f(&[2, 2, 4]),
            ],
        ),
        (
            Op::AttentionGrad {
                causal: true,
                scale: 0.3,
            },
            vec![f(&[2, 4, 8]), f(&[2, 6, 8]), f(&[2, 6, 3]), f(&[2, 4, 3])],
        ),
    ]
}

#[test]
fn every_op_variant_round_trips() {
    let mut seen: BTreeSet<&str> = ["Input", "Param", "Const"].into();
    for (op, ins) in cases() {
        seen.insert(variant(&op));
        assert_roundtrip(&case(op, &ins));
    }
    assert_eq!(seen.len(), VARIANTS, "cases miss variants: {seen:?}");
}

#[test]
fn all_cases_in_one_graph_round_trip() {
    let mut g = Graph::new("all_ops");
    for (k, (op, ins)) in cases().into_iter().enumerate() {
        let vs: Vec<ValueId> = ins
            .iter()
            .enumerate()
            .map(|(j, t)| {
                g.add_source(Op::Input, format!("in{k}_{j}"), t.clone(), None)
                    .unwrap()
            })
            .collect();
        let n = g.add_anon(op, &vs).unwrap();
        g.add_output(format!("out{k}"), ValueId::first(n));
    }
    assert_roundtrip(&g);
}

#[test]
fn sources_names_and_outputs_round_trip() {
    let mut g = Graph::new("sources");
    let inits = [
        Init::Zeros,
        Init::Ones,
        Init::Constant(-2.5),
        Init::Normal {
            mean: -1.5,
            std: 0.02,
        },
        Init::Uniform { lo: -0.1, hi: 1e-7 },
        Init::GlorotUniform,
        Init::GlorotNormal,
        Init::HeNormal,
    ];
    for (k, init) in inits.into_iter().enumerate() {
        g.add_source(Op::Param { init }, format!("p{k}"), f(&[3, 2]), None)
            .unwrap();
    }
    let consts = [
        (
            ConstValue::Float(vec![
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                1e-300,
                1e300,
                0.1,
            ]),
            f(&[2, 3]),
        ),
        (ConstValue::Float(vec![0.5]), f(&[])),
        (ConstValue::Int(vec![i64::MIN, i64::MAX, 0, -1]), i(&[2, 2])),
        (ConstValue::Bool(vec![true, false]), b(&[2, 1])),
    ];
    for (k, (value, t)) in consts.into_iter().enumerate() {
        g.add_source(Op::Const { value }, format!("c{k}"), t, None)
            .unwrap();
    }
    // Names that need backticks: a keyword and one with a space.
    let x = g.add_source(Op::Input, "input", f(&[3, 2]), None).unwrap();
    let y = g
        .add_source(Op::Input, "my value", f(&[3, 2]), None)
        .unwrap();
    let s = g.add_anon(Op::Binary(BinaryOp::Add), &[x, y]).unwrap();
    let lstm = g
        .add_anon(
            Op::Recurrent {
                cell: CellKind::Lstm,
                sequence: false,
            },
            &[
                g.lookup("c1").unwrap(),
                g.lookup("c1").unwrap(),
                g.lookup("c1").unwrap(),
                g.lookup("c1").unwrap(),
                g.lookup("c1").unwrap(),
                g.lookup("c1").unwrap(),
                g.lookup("c1").unwrap(),
            ],
        )
        .err();
    assert!(lstm.is_some(), "scalar lstm must be refused");
    g.add_output("sum", ValueId::first(s));
    g.add_output("input", x);
    g.add_output("again", x);
    assert_roundtrip(&g);
}

#[test]
fn multi_result_outputs_round_trip() {
    let ins = [
        f(&[5, 2, 3]),
        f(&[2, 4]),
        f(&[2, 4]),
        f(&[16, 3]),
        f(&[16, 4]),
        f(&[16]),
        f(&[16]),
    ];
    let mut g = case(
        Op::Recurrent {
            cell: CellKind::Lstm,
            sequence: true,
        },
        &ins,
    );
    let h = g.lookup("_7_1").expect("second result of the lstm node");
    let t = g.add_anon(Op::Unary(UnaryOp::Tanh), &[h]).unwrap();
    g.add_output("t", ValueId::first(t));
    assert_roundtrip(&g);
}
