//! Lowering of convolutions, transposed convolutions and pooling to one
//! [`SpatialOp`] kernel each (1-D ops become 2-D ops of height 1).

use dlc_ir::{NodeId, Op, PoolKind, UnaryOp, ValueId};

use super::Lower;
use crate::CodegenError;
use crate::kernel::{
    Activation, Blocking, GEMM_MR, GEMM_NR_MAX, Kernel, KernelOp, NATIVE_CONV_MAX_BLOCK,
    NATIVE_CONV_PACK_MAX, SpatialOp, Window,
};

/// Lowers one node of the family.
pub fn lower(cx: &mut Lower, id: NodeId) -> Result<(), CodegenError> {
    let op = &cx.g.node(id).op;
    let sp = cx.g.ty(ValueId::first(id)).rank() - 2;
    if !(1..=2).contains(&sp) {
        return Err(CodegenError::Unsupported(op.name()));
    }
    match op {
        Op::Conv(a) => conv(
            cx,
            id,
            (&a.stride, &a.padding, &a.dilation),
            a.groups,
            false,
        ),
        Op::ConvTranspose(a) => conv(cx, id, (&a.stride, &a.padding, &a.dilation), a.groups, true),
        Op::Pool(p) => {
            let x = cx.g.ty(cx.g.operands(id)[0]).clone();
            let out = cx.g.ty(ValueId::first(id)).clone();
            let planes = x.shape[0] * x.shape[1];
            let attrs = (&p.stride[..], &p.padding[..], &[1][..]);
            let window = window(&x.shape, &out.shape, pair(&p.kernel), attrs);
            let row_chunks = row_chunks(planes, window.output[0]);
            let op = SpatialOp::Pool {
                kind: p.kind,
                planes,
                row_chunks,
                window,
            };
            let window = window.kernel[0] * window.kernel[1];
            let parallel = planes * row_chunks;
            push(
                cx,
                (id, &[]),
                "pool",
                op,
                parallel,
                (out.numel() * window) as f64,
            );
            Ok(())
        }
        other => Err(CodegenError::Internal(format!(
            "{} reached the spatial lowering",
            other.name()
        ))),
    }
}

/// A per-axis attribute as `[height, width]` (height 1 for 1-D ops).
pub(crate) fn pair(v: &[usize]) -> [usize; 2] {
    pair_or(v, 1)
}

/// A per-axis attribute as `[height, width]`, with `unit` as the height of 1-D ops.
fn pair_or(v: &[usize], unit: usize) -> [usize; 2] {
    match *v {
        [w] => [unit, w],
        [h, w] => [h, w],
        _ => unreachable!("1-D or 2-D only"),
    }
}

/// The padding before the first row and column (none above a 1-D op).
pub(crate) fn pad(padding: &[(usize, usize)]) -> [usize; 2] {
    pair_or(&padding.iter().map(|p| p.0).collect::<Vec<_>>(), 0)
}

/// A window op's stride, padding and dilation attributes, per spatial axis.
pub(crate) type WindowAttrs<'a> = (&'a [usize], &'a [(usize, usize)], &'a [usize]);

/// The 2-D geometry of a window op from its input and output shapes (`[N, C,
/// *spatial]`), its kernel `[height, width]` and its attributes.
pub(crate) fn window(
    x: &[usize],
    out: &[usize],
    kernel: [usize; 2],
    (stride, padding, dilation): WindowAttrs,
) -> Window {
    Window {
        input: spatial(x),
        output: spatial(out),
        kernel,
        stride: pair(stride),
        pad: pad(padding),
        dilation: pair(dilation),
    }
}

/// The spatial extent `[height, width]` of an `[N, C, *spatial]` shape.
pub(crate) fn spatial(shape: &[usize]) -> [usize; 2] {
    pair(&shape[2..])
}

/// Output channels computed together: the largest divisor of the channels per
/// group up to 6, so that `oc_block × row vectors` accumulators fit in registers.
///
/// On the native tier, the divisor up to [`NATIVE_CONV_MAX_BLOCK`] with the
/// most multiply-adds per tap: `oc_block × ymm vectors × rows` of its register
/// tile ([`SpatialOp::native_conv_tile`]) for `height × width` outputs (LeNet's second
/// conv, 16 channels 8 wide, takes 4 channels × 1 vector × 2 rows rather than
/// 8 × 1 × 1: as many multiply-adds, 6 loads instead of 9), then the fewest
/// loads, then the larger block.
fn oc_block(per_group: usize, native: bool, [height, width]: [usize; 2]) -> usize {
    let divisors = (1..=per_group).filter(|&b| per_group.is_multiple_of(b));
    if native {
        // Multiply-adds and loads (inputs and broadcasts) per tap.
        let tile = |b: usize| {
            let (nv, nr) = SpatialOp::native_conv_tile(b, width);
            let vectors = nv * nr.min(height);
            (b * vectors, std::cmp::Reverse(b + vectors), b)
        };
        divisors
            .filter(|&b| b <= NATIVE_CONV_MAX_BLOCK)
            .max_by_key(|&b| tile(b))
            .unwrap_or(1)
    } else {
        divisors.filter(|&b| b <= 6).max().unwrap_or(1)
    }
}

/// Parallel units worth having: enough for a few threads with some balance.
const PARALLEL_UNITS: usize = 16;

/// Runs to split `rows` output rows into when there are `units` planes or
/// channel blocks: one, unless that leaves fewer than [`PARALLEL_UNITS`].
fn row_chunks(units: usize, rows: usize) -> usize {
    PARALLEL_UNITS.div_ceil(units).clamp(1, rows.max(1))
}

/// Output channels per group from which a convolution runs as implicit GEMM.
///
/// The B packing copies every element of the im2col matrix once (mostly as
/// f32x4 runs) and the micro-kernel reuses it for `og` rows, so the packing
/// pays off only with enough rows. Measured (one thread): W2a (og 64) 12.5 ms
/// direct → 2.8 ms GEMM; LeNet-5's second conv (og 16, depth 150, 8×8 output,
/// batch 64) takes ~20% fewer perf samples as GEMM than direct (with the
/// scalar packing of before it was 1.0 ms GEMM vs 0.55 direct); its first
/// (og 6, depth 25) is faster direct.
const GEMM_MIN_CHANNELS: usize = 16;

/// [`GEMM_MIN_CHANNELS`] on the native tier when the weights fit the direct
/// kernel's packed copy (`NATIVE_CONV_PACK_MAX`); that kernel is twice as
/// wide: LeNet-5's second conv (og 16) takes 0.26 ms direct against 0.44 ms as
/// implicit GEMM there (one thread, CPU min, same minute). W2a and W2c (og 64)
/// stay GEMM.
const NATIVE_GEMM_MIN_CHANNELS: usize = 32;

/// The blocking of a convolution run as implicit GEMMs, or `None` when the
/// direct kernel runs it.
///
/// Per image and group the product is `C[og, oh·ow] = W[og, cg·taps] · im2col`.
/// The rule: implicit GEMM for a convolution (not transposed) with at least
/// [`GEMM_MIN_CHANNELS`] output channels per group ([`NATIVE_GEMM_MIN_CHANNELS`]
/// when `native`), and a depth `cg·taps` and
/// `oh·ow` of at least 16 (the packed GEMM's own threshold,
/// `MatMulKernel::packed`); depthwise and few-channel grouped convolutions
/// (depth below 16) stay direct, where the micro-kernel's tile overhead would
/// dominate.
///
/// `kc` is a multiple of the taps so that every depth block starts at an
/// input channel: the packing then walks whole channels.
fn conv_gemm(og: usize, cg: usize, taps: usize, columns: usize, native: bool) -> Option<Blocking> {
    let k = cg * taps;
    let min_channels = if native {
        NATIVE_GEMM_MIN_CHANNELS
    } else {
        GEMM_MIN_CHANNELS
    };
    if og < min_channels || k < 16 || columns < 16 {
        return None;
    }
    let round = |x: usize, q: usize| x.div_ceil(q) * q;
    let kc = (taps * (256 / taps).max(1)).min(k);
    let mc = round(og, GEMM_MR).min(72);
    let nc = if og <= mc {
        // One row block: the GEMM packs A once per depth block and walks the
        // column blocks inside it, so a B block small enough for L1/L2
        // (≤ 64 KiB) is reused by every row tile while it is hot.
        (16 * 1024 / kc).max(GEMM_NR_MAX)
    } else {
        // Keep the packed B block near 1 MiB when a single kernel's taps exceed 256.
        round(columns, GEMM_NR_MAX).min(1024) * 256 / kc.max(256)
    };
    let nc = nc.min(round(columns, GEMM_NR_MAX)).max(GEMM_NR_MAX);
    Some(Blocking {
        mc,
        kc,
        nc: nc / GEMM_NR_MAX * GEMM_NR_MAX,
    })
}

fn conv(
    cx: &mut Lower,
    id: NodeId,
    attrs: WindowAttrs,
    groups: usize,
    transposed: bool,
) -> Result<(), CodegenError> {
    let ops = cx.g.operands(id);
    let x = cx.g.ty(ops[0]).clone();
    let w = cx.g.ty(ops[1]).clone();
    let out = cx.g.ty(ValueId::first(id)).clone();
    let (n, c_in, c_out) = (x.shape[0], x.shape[1], out.shape[1]);
    let window = window(&x.shape, &out.shape, spatial(&w.shape), attrs);
    let Window { output, kernel, .. } = window;
    // The native direct kernel reads its weights packed into its scratch.
    let native = cx.native && 4 * w.numel() <= NATIVE_CONV_PACK_MAX;
    let oc_block = oc_block(c_out / groups, native, output);
    let columns = out.numel() / (n * c_out);
    let gemm = if transposed {
        None
    } else {
        conv_gemm(
            c_out / groups,
            c_in / groups,
            kernel[0] * kernel[1],
            columns,
            native,
        )
    };
    // Rows per phase: a transposed convolution has `stride` row phases.
    let phase_rows = if transposed {
        output[0] / window.stride[0].min(output[0])
    } else {
        output[0]
    };
    let blocks = n * c_out / oc_block;
    let row_chunks = row_chunks(blocks, phase_rows);
    let parallel = match gemm {
        Some(_) => n * groups * columns.div_ceil(GEMM_NR_MAX),
        None => blocks * row_chunks,
    };
    let mut op = SpatialOp::Conv {
        n,
        c_in,
        c_out,
        groups,
        oc_block,
        row_chunks,
        window,
        transposed,
        bias: ops.len() == 3,
        activation: Activation::Identity,
        pool: 1,
        gemm,
    };
    // Multiply-adds: every (output, tap) pair of a convolution, every (input, tap)
    // pair of a transposed one (cropped taps included).
    let macs = if transposed {
        x.numel() * (c_out / groups)
    } else {
        out.numel() * (c_in / groups)
    } * kernel[0]
        * kernel[1];
    let name = if transposed { "conv_transpose" } else { "conv" };
    let SpatialOp::Conv {
        activation,
        pool,
        row_chunks,
        ..
    } = &mut op
    else {
        unreachable!("a convolution")
    };
    let mut absorbed = vec![];
    if let Some(r) = relu_user(cx, id) {
        *activation = Activation::Relu;
        absorbed.push(r);
    }
    let mut parallel = parallel;
    let result = absorbed.last().copied().unwrap_or(id);
    let fits = 4 * oc_block * output[0] * output[1] <= SpatialOp::POOL_FUSE_MAX;
    let fusable = gemm.is_none() && !transposed && fits;
    if let Some((p, k)) =
        pool_user(cx, result, [n, c_out, output[0], output[1]]).filter(|_| fusable)
    {
        *pool = k;
        *row_chunks = self::row_chunks(blocks, output[0] / k);
        parallel = blocks * *row_chunks;
        absorbed.push(p);
    }
    cx.absorbed.extend(absorbed.iter().copied());
    push(cx, (id, &absorbed), name, op, parallel, 2.0 * macs as f64);
    Ok(())
}

/// The max pooling that is the only user of `id` (a convolution's result of
/// shape `conv`), with its window `k`, when the convolution's kernel can pool
/// its rows before storing them: `id` is not a graph output, the pooling is
/// not inlined elsewhere, and it has square `k × k` windows at stride `k`
/// without padding over 2-D images (the rows and columns past the last whole
/// window are never read).
fn pool_user(cx: &Lower, id: NodeId, conv: [usize; 4]) -> Option<(NodeId, usize)> {
    let g = cx.g;
    let mut users: Vec<NodeId> = g.users(id).collect();
    users.dedup();
    let [p] = users[..] else { return None };
    let is_output = g.outputs().iter().any(|o| o.value == ValueId::first(id));
    let Op::Pool(a) = &g.node(p).op else {
        return None;
    };
    let k = a.kernel.first().copied()?;
    let square = a.kernel == [k, k] && a.stride == [k, k];
    let pooled = [conv[0], conv[1], conv[2] / k, conv[3] / k];
    let fits = g.ty(ValueId::first(p)).shape[..] == pooled[..];
    let ok = a.kind == PoolKind::Max
        && k > 1
        && square
        && a.padding.iter().all(|&pad| pad == (0, 0))
        && fits
        && !is_output
        && !cx.fused.contains(&p);
    ok.then_some((p, k))
}

/// The ReLU that is the only user of convolution `id`, when the convolution's
/// kernel can apply it at its store instead: the convolution's value is not a
/// graph output, and the ReLU is not inlined into an elementwise consumer.
fn relu_user(cx: &Lower, id: NodeId) -> Option<NodeId> {
    let g = cx.g;
    let mut users: Vec<NodeId> = g.users(id).collect();
    users.dedup();
    let [r] = users[..] else { return None };
    let is_output = g.outputs().iter().any(|o| o.value == ValueId::first(id));
    let relu = matches!(g.node(r).op, Op::Unary(UnaryOp::Relu));
    (relu && !is_output && !cx.fused.contains(&r)).then_some(r)
}

/// Appends the kernel of node `id`, reading all its operands and writing the
/// result of the last of the nodes it `absorbed` (`id` itself when none: an
/// absorbed ReLU and/or max pooling of it).
fn push(
    cx: &mut Lower,
    (id, absorbed): (NodeId, &[NodeId]),
    name: &str,
    op: SpatialOp,
    parallel: usize,
    flops: f64,
) {
    let operands = cx.g.operands(id);
    let inputs = operands.iter().map(|&v| cx.buf(v)).collect();
    let mut bytes: usize = operands.iter().map(|&v| cx.g.ty(v).size_bytes()).sum();
    bytes += cx.g.ty(ValueId::first(id)).size_bytes();
    let result = absorbed.last().copied().unwrap_or(id);
    let out = cx.result_buffer(ValueId::first(result));
    cx.push_kernel(Kernel {
        name: name.to_string(),
        op: KernelOp::Spatial(op),
        inputs,
        outputs: vec![out],
        parallel,
        flops,
        bytes: bytes as f64,
        nodes: [&[id][..], absorbed].concat(),
        in_place: vec![],
    });
}
