//! The PyTorch reference data in `tests/reference/*.npz` as dlc graphs.
//!
//! Shared by every backend's reference test (the interpreter now, the JIT later):
//! [`load_all`] turns each file into a [`Case`] — a graph built with the
//! [`Graph`] builder API (not the text parser), the file's arrays bound as graph
//! inputs or parameters, and the stored outputs it must reproduce. Files whose op
//! dlc lacks come back as [`Skip`]s with the reason, for the test to print.
//!
//! The graphs map the reference layouts onto dlc's ops: `linear` is
//! `x @ transpose(w) + b`; PyTorch's recurrent states `[1, B, H]` are reshaped
//! to dlc's `[B, H]` and back; `max`'s `indices` is an `argmax`; batchnorm
//! training also outputs the updated running statistics.
//!
//! Gradient keys (`grad_*`), the loss weights (`R`, `R_*`) and SGD results
//! (`sgd_*`) are listed in [`Case::unchecked`]: they belong to autodiff.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dlc_ir::{
    BinaryOp, CellKind, ConvAttrs, ConvTransposeAttrs, Graph, Init, Op, PoolAttrs, PoolKind,
    ReduceKind, SliceRange, UnaryOp, ValueId,
};
use dlc_tensor::{Env, Tensor, Value, allowance_ratio};

/// One reference file as a dlc graph with its data.
pub struct Case {
    /// File name, e.g. `conv2d_1_basic.npz`.
    pub file: String,
    /// The op or model, built with the graph builder.
    pub graph: Graph,
    /// Values for the graph's inputs.
    pub inputs: Env,
    /// Values for the graph's parameters.
    pub params: Env,
    /// Output name (the npz key, e.g. `out`, `out_h_n`, `indices`) → stored result.
    pub expected: Env,
    /// Keys of the file that no forward check uses (`grad_*`, `R*`, `sgd_*`).
    pub unchecked: Vec<String>,
}

/// A reference file that could not be turned into a case.
pub struct Skip {
    /// File name.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// The directory holding the reference files.
pub fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// Every `.npz` file of the reference directory as a case (or a skip), sorted by name.
pub fn load_all() -> Vec<Result<Case, Skip>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(reference_dir())
        .expect("tests/reference exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "npz"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no reference files found");
    files.iter().map(|p| load(p)).collect()
}

/// One file as a case.
pub fn load(path: &Path) -> Result<Case, Skip> {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let data = dlc_tensor::read_npz(path).map_err(|e| Skip {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    let stem = file.trim_end_matches(".npz").to_string();
    let mut b = Builder::new(&stem, data);
    build(&stem, &mut b).map_err(|reason| Skip {
        file: file.clone(),
        reason,
    })?;
    b.finish(file)
        .map_err(|(file, reason)| Skip { file, reason })
}

/// Builds a graph from a file's arrays, tracking which keys are used.
pub struct Builder {
    g: Graph,
    data: Env,
    inputs: Env,
    params: Env,
    expected: Env,
}

impl Builder {
    fn new(name: &str, data: Env) -> Builder {
        Builder {
            g: Graph::new(name),
            data,
            inputs: Env::new(),
            params: Env::new(),
            expected: Env::new(),
        }
    }

    fn array(&self, key: &str) -> Result<Tensor, String> {
        self.data
            .get(key)
            .cloned()
            .ok_or_else(|| format!("the file has no array `{key}`"))
    }

    /// Declares the file's array `key` as a graph input.
    fn input(&mut self, key: &str) -> Result<ValueId, String> {
        let v = self.array(key)?;
        self.inputs.insert(key.into(), v.clone());
        self.g
            .add_source(Op::Input, key, v.ty(), None)
            .map_err(|e| e.to_string())
    }

    /// Declares the file's array `key` as a parameter.
    fn param(&mut self, key: &str) -> Result<ValueId, String> {
        let v = self.array(key)?;
        self.params.insert(key.into(), v.clone());
        let op = Op::Param { init: Init::Zeros };
        self.g
            .add_source(op, key, v.ty(), None)
            .map_err(|e| e.to_string())
    }

    /// Adds an op and returns all of its results.
    fn ops(&mut self, op: Op, args: &[ValueId]) -> Result<Vec<ValueId>, String> {
        let node = self.g.add_anon(op, args).map_err(|e| e.to_string())?;
        let n = self.g.node(node).types.len() as u32;
        Ok((0..n).map(|result| ValueId { node, result }).collect())
    }

    /// Adds an op and returns its first result.
    fn op(&mut self, op: Op, args: &[ValueId]) -> Result<ValueId, String> {
        Ok(self.ops(op, args)?[0])
    }

    fn shape(&self, v: ValueId) -> Vec<usize> {
        self.g.ty(v).shape.clone()
    }

    /// Marks `v` as the graph output `key`, expected to equal the file's array `key`.
    fn output(&mut self, key: &str, v: ValueId) -> Result<(), String> {
        let want = self.array(key)?;
        self.expected.insert(key.into(), want);
        self.g.add_output(key, v);
        Ok(())
    }

    fn finish(self, file: String) -> Result<Case, (String, String)> {
        let mut unchecked = Vec::new();
        for key in self.data.keys() {
            let used = self.inputs.contains_key(key)
                || self.params.contains_key(key)
                || self.expected.contains_key(key);
            let autodiff = key.starts_with("grad_") || key.starts_with("sgd_") || key == "R";
            if autodiff || key.starts_with("R_") {
                unchecked.push(key.clone());
            } else if !used {
                return Err((file, format!("array `{key}` is not used by the case")));
            }
        }
        if let Err(e) = dlc_ir::verify(&self.g) {
            return Err((file, e.to_string()));
        }
        Ok(Case {
            file,
            graph: self.g,
            inputs: self.inputs,
            params: self.params,
            expected: self.expected,
            unchecked,
        })
    }

    // ---- layer helpers ----

    /// `x @ w^T + b` with `w` in PyTorch's `[out, in]` layout.
    fn linear(&mut self, x: ValueId, w: ValueId, b: ValueId) -> Result<ValueId, String> {
        let wt = self.op(Op::Transpose { perm: vec![1, 0] }, &[w])?;
        let y = self.op(Op::MatMul, &[x, wt])?;
        self.op(Op::Binary(BinaryOp::Add), &[y, b])
    }

    fn reshape(&mut self, x: ValueId, shape: Vec<usize>) -> Result<ValueId, String> {
        self.op(Op::Reshape { shape }, &[x])
    }

    fn relu(&mut self, x: ValueId) -> Result<ValueId, String> {
        self.op(Op::Unary(UnaryOp::Relu), &[x])
    }
}

/// Symmetric conv attributes for `spatial` dims.
fn conv_attrs(stride: [usize; 2], pad: [usize; 2], dil: [usize; 2], groups: usize) -> ConvAttrs {
    ConvAttrs {
        stride: stride.to_vec(),
        padding: pad.iter().map(|&p| (p, p)).collect(),
        dilation: dil.to_vec(),
        groups,
    }
}

fn pool_attrs(kind: PoolKind, k: usize, s: usize, p: usize) -> PoolAttrs {
    PoolAttrs {
        kind,
        kernel: vec![k, k],
        stride: vec![s, s],
        padding: vec![(p, p), (p, p)],
    }
}

/// The graph of one reference file, by file stem.
fn build(stem: &str, b: &mut Builder) -> Result<(), String> {
    let unary = |name: &str| {
        UnaryOp::ALL
            .into_iter()
            .find(|u| u.name() == name)
            .or(match name {
                "gelu_erf" => Some(UnaryOp::GeluErf),
                _ => None,
            })
    };
    let family = stem.split('_').next().unwrap_or(stem);
    match stem {
        _ if family == "matmul" => {
            let (x, y) = (b.input("a")?, b.input("b")?);
            let out = b.op(Op::MatMul, &[x, y])?;
            b.output("out", out)
        }
        "linear" => {
            let x = b.input("x")?;
            let (w, bias) = (b.param("weight")?, b.param("bias")?);
            let out = b.linear(x, w, bias)?;
            b.output("out", out)
        }
        _ if family == "add" || family == "mul" => {
            let op = if family == "add" {
                BinaryOp::Add
            } else {
                BinaryOp::Mul
            };
            let (x, y) = (b.input("a")?, b.input("b")?);
            let out = b.op(Op::Binary(op), &[x, y])?;
            b.output("out", out)
        }
        _ if unary(stem).is_some() => {
            let x = b.input("x")?;
            let out = b.op(Op::Unary(unary(stem).unwrap()), &[x])?;
            b.output("out", out)
        }
        _ if stem.starts_with("softmax") || stem.starts_with("log_softmax") => {
            let x = b.input("x")?;
            let rank = b.shape(x).len();
            let axis = if stem == "softmax_2_middle_axis" {
                1
            } else {
                rank - 1
            };
            let op = if family == "log" {
                Op::LogSoftmax { axis }
            } else {
                Op::Softmax { axis }
            };
            let out = b.op(op, &[x])?;
            b.output("out", out)
        }
        _ if matches!(family, "sum" | "mean" | "max") => {
            let x = b.input("x")?;
            let (axes, keepdim) = match stem {
                "sum_1_axis" => (vec![1], false),
                "sum_2_axis_keepdim" => (vec![2], true),
                "sum_3_all" => (vec![0, 1, 2], false),
                "mean_1_axis" => (vec![0], false),
                "mean_2_axis_keepdim" => (vec![2], true),
                "max_1_axis" => (vec![2], false),
                "max_2_axis_keepdim" => (vec![1], true),
                _ => return Err(format!("unknown reduction file {stem}")),
            };
            let kind = match family {
                "sum" => ReduceKind::Sum,
                "mean" => ReduceKind::Mean,
                _ => ReduceKind::Max,
            };
            let op = Op::Reduce {
                kind,
                axes: axes.clone(),
                keepdim,
            };
            let out = b.op(op, &[x])?;
            b.output("out", out)?;
            if kind == ReduceKind::Max {
                let idx = b.op(
                    Op::ArgMax {
                        axis: axes[0],
                        keepdim,
                    },
                    &[x],
                )?;
                b.output("indices", idx)?;
            }
            Ok(())
        }
        "transpose_2d" | "permute_nchw_to_nhwc" => {
            let x = b.input("x")?;
            let perm = if stem == "transpose_2d" {
                vec![1, 0]
            } else {
                vec![0, 2, 3, 1]
            };
            let out = b.op(Op::Transpose { perm }, &[x])?;
            b.output("out", out)
        }
        "reshape" => {
            let x = b.input("x")?;
            let out = b.reshape(x, vec![3, 8])?;
            b.output("out", out)
        }
        "concat" => {
            let xs = [b.input("x0")?, b.input("x1")?, b.input("x2")?];
            let out = b.op(Op::Concat { axis: 1 }, &xs)?;
            b.output("out", out)
        }
        "slice" => {
            let x = b.input("x")?;
            let ranges = [(1, 5, 2), (0, 8, 1), (2, 4, 1)]
                .map(|(start, end, step)| SliceRange { start, end, step })
                .to_vec();
            let out = b.op(Op::Slice { ranges }, &[x])?;
            b.output("out", out)
        }
        _ if stem.starts_with("conv2d_") => {
            let attrs = match stem {
                "conv2d_1_basic" => conv_attrs([1, 1], [1, 1], [1, 1], 1),
                "conv2d_2_stride2" => conv_attrs([2, 2], [1, 1], [1, 1], 1),
                "conv2d_3_dilation2" => conv_attrs([1, 1], [2, 2], [2, 2], 1),
                "conv2d_4_groups2" => conv_attrs([1, 1], [1, 1], [1, 1], 2),
                "conv2d_5_depthwise" => conv_attrs([1, 1], [1, 1], [1, 1], 6),
                "conv2d_6_pointwise_1x1" => conv_attrs([1, 1], [0, 0], [1, 1], 1),
                "conv2d_7_nonsquare" => conv_attrs([2, 1], [1, 2], [1, 1], 1),
                "conv2d_8_valid_nobias" => conv_attrs([1, 1], [0, 0], [1, 1], 1),
                _ => return Err(format!("unknown conv file {stem}")),
            };
            let x = b.input("x")?;
            let mut args = vec![x, b.param("weight")?];
            if stem != "conv2d_8_valid_nobias" {
                args.push(b.param("bias")?);
            }
            let out = b.op(Op::Conv(attrs), &args)?;
            b.output("out", out)
        }
        _ if stem.starts_with("conv1d_causal") => {
            let (left, dilation) = if stem.ends_with('1') { (2, 2) } else { (8, 4) };
            let attrs = ConvAttrs {
                stride: vec![1],
                padding: vec![(left, 0)],
                dilation: vec![dilation],
                groups: 1,
            };
            let args = [b.input("x")?, b.param("weight")?, b.param("bias")?];
            let out = b.op(Op::Conv(attrs), &args)?;
            b.output("out", out)
        }
        _ if stem.starts_with("conv_transpose2d") => {
            let (pad, out_pad) = if stem.ends_with('1') { (1, 1) } else { (0, 0) };
            let attrs = ConvTransposeAttrs {
                stride: vec![2, 2],
                padding: vec![(pad, pad); 2],
                output_padding: vec![out_pad; 2],
                dilation: vec![1, 1],
                groups: 1,
            };
            let args = [b.input("x")?, b.param("weight")?, b.param("bias")?];
            let out = b.op(Op::ConvTranspose(attrs), &args)?;
            b.output("out", out)
        }
        _ if family == "maxpool2d" || family == "avgpool2d" => {
            let attrs = match stem {
                "maxpool2d_1_k2s2" => pool_attrs(PoolKind::Max, 2, 2, 0),
                "maxpool2d_2_k3s2p1" => pool_attrs(PoolKind::Max, 3, 2, 1),
                "avgpool2d_1_k2s2" => pool_attrs(avg(true), 2, 2, 0),
                "avgpool2d_2_k3s2p1_include_pad" => pool_attrs(avg(true), 3, 2, 1),
                "avgpool2d_3_k3s2p1_exclude_pad" => pool_attrs(avg(false), 3, 2, 1),
                _ => return Err(format!("unknown pooling file {stem}")),
            };
            let x = b.input("x")?;
            let out = b.op(Op::Pool(attrs), &[x])?;
            b.output("out", out)
        }
        "global_avgpool" => {
            let x = b.input("x")?;
            let out = b.op(Op::GlobalAvgPool, &[x])?;
            b.output("out", out)
        }
        _ if family == "batchnorm2d" || family == "batchnorm1d" => {
            let x = b.input("x")?;
            let mut args = vec![x];
            for key in ["weight", "bias", "running_mean", "running_var"] {
                args.push(b.param(key)?);
            }
            let training = stem.ends_with("training");
            let op = Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
                training,
            };
            let outs = b.ops(op, &args)?;
            b.output("out", outs[0])?;
            if training {
                b.output("running_mean_after", outs[1])?;
                b.output("running_var_after", outs[2])?;
            }
            Ok(())
        }
        _ if family == "layernorm" => {
            let x = b.input("x")?;
            let (w, bias) = (b.param("weight")?, b.param("bias")?);
            let axis = b.shape(x).len() - b.shape(w).len();
            let out = b.op(Op::LayerNorm { axis, eps: 1e-5 }, &[x, w, bias])?;
            b.output("out", out)
        }
        "embedding" => {
            let w = b.param("weight")?;
            let idx = b.input("indices")?;
            let out = b.op(Op::Gather { axis: 0 }, &[w, idx])?;
            b.output("out", out)
        }
        "mse_loss" => {
            let args = [b.input("pred")?, b.input("target")?];
            let out = b.op(Op::MseLoss, &args)?;
            b.output("out", out)
        }
        "cross_entropy" => {
            let args = [b.input("logits")?, b.input("labels")?];
            let out = b.op(Op::CrossEntropy, &args)?;
            b.output("out", out)
        }
        "rnn_tanh_sequence" | "lstm_sequence" | "gru_sequence" => recurrent_sequence(stem, b),
        "lstm_cell" | "gru_cell" => {
            let lstm = stem == "lstm_cell";
            let mut args = vec![b.input("x")?, b.input("h")?];
            if lstm {
                args.push(b.input("c")?);
            }
            for key in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
                args.push(b.param(key)?);
            }
            let cell = if lstm { CellKind::Lstm } else { CellKind::Gru };
            let outs = b.ops(
                Op::Recurrent {
                    cell,
                    sequence: false,
                },
                &args,
            )?;
            b.output("out_h1", outs[0])?;
            if lstm {
                b.output("out_c1", outs[1])?;
            }
            Ok(())
        }
        _ if family == "sdpa" => {
            let args = [b.input("q")?, b.input("k")?, b.input("v")?];
            let e = *b.shape(args[0]).last().unwrap();
            let op = Op::Attention {
                causal: stem.ends_with("causal"),
                scale: 1.0 / (e as f64).sqrt(),
            };
            let out = b.op(op, &args)?;
            b.output("out", out)
        }
        _ if family == "mha" => {
            let qkv = if stem == "mha_1_cross" {
                [b.input("query")?, b.input("key")?, b.input("value")?]
            } else {
                [b.input("x")?; 3]
            };
            let mut args = qkv.to_vec();
            for key in [
                "in_proj_weight",
                "in_proj_bias",
                "out_proj_weight",
                "out_proj_bias",
            ] {
                args.push(b.param(key)?);
            }
            let op = Op::MultiHeadAttention {
                heads: 2,
                causal: stem.ends_with("causal"),
            };
            let out = b.op(op, &args)?;
            b.output("out", out)
        }
        "mlp2_train_step" => {
            let (x, labels) = (b.input("x")?, b.input("labels")?);
            let (w1, b1) = (b.param("w1")?, b.param("b1")?);
            let (w2, b2) = (b.param("w2")?, b.param("b2")?);
            let h = b.linear(x, w1, b1)?;
            let h = b.relu(h)?;
            let logits = b.linear(h, w2, b2)?;
            let loss = b.op(Op::CrossEntropy, &[logits, labels])?;
            b.output("out", loss)?;
            b.output("logits", logits)
        }
        "lenet5" => lenet5(b),
        "grid_lstm2d" => {
            let x = b.input("x")?;
            let mut args = vec![x];
            for key in ["w1", "b1", "w2", "b2"] {
                args.push(b.param(key)?);
            }
            let outs = b.ops(Op::GridLstm, &args)?;
            for (key, v) in [
                "out_y",
                "out_h_vert",
                "out_m_vert",
                "out_h_hor",
                "out_m_hor",
            ]
            .iter()
            .zip(outs)
            {
                b.output(key, v)?;
            }
            Ok(())
        }
        _ => Err(format!("no dlc graph for the reference op `{stem}`")),
    }
}

fn avg(count_include_pad: bool) -> PoolKind {
    PoolKind::Avg { count_include_pad }
}

/// A PyTorch RNN/LSTM/GRU over a sequence: states `[1, B, H]` ↔ dlc's `[B, H]`.
fn recurrent_sequence(stem: &str, b: &mut Builder) -> Result<(), String> {
    let cell = match stem {
        "rnn_tanh_sequence" => CellKind::Rnn,
        "lstm_sequence" => CellKind::Lstm,
        _ => CellKind::Gru,
    };
    let x = b.input("x")?;
    let mut state_keys = vec!["h0"];
    if cell.has_cell_state() {
        state_keys.push("c0");
    }
    let mut args = vec![x];
    for key in &state_keys {
        let s = b.input(key)?;
        let shape = b.shape(s)[1..].to_vec();
        args.push(b.reshape(s, shape)?);
    }
    for key in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"] {
        args.push(b.param(key)?);
    }
    let outs = b.ops(
        Op::Recurrent {
            cell,
            sequence: true,
        },
        &args,
    )?;
    b.output("out_y", outs[0])?;
    let out_keys = ["out_h_n", "out_c_n"];
    for (key, &v) in out_keys.iter().zip(&outs[1..]) {
        let shape = [vec![1], b.shape(v)].concat();
        let v = b.reshape(v, shape)?;
        b.output(key, v)?;
    }
    Ok(())
}

/// LeNet-5 forward: two valid 5x5 convs with relu and 2x2 max pooling, then
/// three linear layers (relu between).
fn lenet5(b: &mut Builder) -> Result<(), String> {
    let mut h = b.input("x")?;
    for layer in ["conv1", "conv2"] {
        let w = b.param(&format!("{layer}_weight"))?;
        let bias = b.param(&format!("{layer}_bias"))?;
        let conv = Op::Conv(conv_attrs([1, 1], [0, 0], [1, 1], 1));
        h = b.op(conv, &[h, w, bias])?;
        h = b.relu(h)?;
        h = b.op(Op::Pool(pool_attrs(PoolKind::Max, 2, 2, 0)), &[h])?;
    }
    let n = b.shape(h)[0];
    let flat: usize = b.shape(h)[1..].iter().product();
    h = b.reshape(h, vec![n, flat])?;
    for (i, layer) in ["fc1", "fc2", "fc3"].iter().enumerate() {
        let w = b.param(&format!("{layer}_weight"))?;
        let bias = b.param(&format!("{layer}_bias"))?;
        h = b.linear(h, w, bias)?;
        if i < 2 {
            h = b.relu(h)?;
        }
    }
    b.output("out", h)
}

/// The suggested forward tolerance of the reference data (README): relative part.
pub const RTOL: f32 = 1e-4;
/// The suggested forward tolerance: absolute part.
pub const ATOL: f32 = 1e-5;

/// The worst allowance ratio over a case's outputs, or a description of a mismatch.
pub fn worst_ratio(case: &Case, got: &Env) -> Result<f32, String> {
    let mut worst = 0.0f32;
    for (name, want) in &case.expected {
        let got = got
            .get(name)
            .ok_or_else(|| format!("output `{name}` missing"))?;
        match (got, want) {
            (Value::Float(g), Value::Float(w)) => {
                let r = allowance_ratio(g, w, RTOL, ATOL).ok_or_else(|| {
                    format!(
                        "`{name}`: shape {:?} vs {:?}, or NaN mismatch",
                        g.shape(),
                        w.shape()
                    )
                })?;
                if r > 1.0 {
                    return Err(format!("`{name}` is off by {r:.3} allowances"));
                }
                worst = worst.max(r);
            }
            (Value::Int(g), Value::Int(w)) if g == w => {}
            _ => return Err(format!("`{name}`: got {}, want {}", got.ty(), want.ty())),
        }
    }
    Ok(worst)
}
