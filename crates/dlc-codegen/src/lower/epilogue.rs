//! Epilogue fusion: a product's elementwise consumer, and a layer norm of its
//! rows, become part of the product's kernel (see [`Epilogue`]), so C is
//! finished while it is in cache instead of being written, then read back by
//! a kernel of its own.
//!
//! A consumer is fused when the product's value is a temporary (not a graph
//! output) that nothing else reads, and the consumer reads it element for
//! element in C's own layout. The fused kernel takes the consumer's place in
//! the kernel order, after everything the consumer reads has been computed,
//! and writes the consumer's buffer; the product's own buffer is left unused.

use dlc_ir::types::strides;
use dlc_ir::{DType, NodeId, Op, ValueId};

use super::Lower;
use crate::kernel::{BufId, BufferKind, ElemKernel, Epilogue, Kernel, KernelOp, RowNorm};

/// Fuses the elementwise kernel `k` (leaves over the uncollapsed iteration
/// `shape`, reading `inputs`, computing `members` with root `root`) into the
/// product that computes one of its leaves, if there is one it may join.
/// Returns whether it did; the caller then emits nothing.
pub fn absorb_elementwise(
    cx: &mut Lower,
    k: &ElemKernel,
    shape: &[usize],
    inputs: &[BufId],
    members: &[NodeId],
    root: NodeId,
) -> bool {
    if cx.g.ty(ValueId::first(root)).dtype != DType::F32 {
        return false;
    }
    let contiguous = strides(shape);
    let found = inputs.iter().enumerate().find_map(|(input, &buf)| {
        let reads: Vec<usize> = (0..k.leaves.len())
            .filter(|&j| k.leaves[j].input == input)
            .collect();
        let [leaf] = reads[..] else { return None };
        let l = &k.leaves[leaf];
        // Size-1 dims have stride 0 in a leaf; they do not move the index.
        let in_layout =
            (l.strides.iter().zip(&contiguous).zip(shape)).all(|((&s, &c), &d)| s == c || d == 1);
        let whole = l.offset == 0 && in_layout && l.dtype == DType::F32;
        let at = whole.then(|| product_of(cx, buf, members))??;
        Some((input, leaf, at))
    });
    let Some((c_input, c_leaf, at)) = found else {
        return false;
    };
    let KernelOp::MatMul(mm) = &cx.out.kernels[at].op else {
        return false;
    };
    if shape.last() != Some(&mm.n) || mm.epilogue.is_some() {
        return false;
    }
    let mut kernel = cx.out.kernels.remove(at);
    let KernelOp::MatMul(mm) = &mut kernel.op else {
        unreachable!("checked above")
    };
    // The consumer's other inputs follow the product's; leaf inputs are renumbered.
    let base = kernel.inputs.len();
    let mut added = Vec::new();
    let mut elem = ElemKernel {
        shape: shape.to_vec(),
        ..k.clone()
    };
    for leaf in &mut elem.leaves {
        if leaf.input == c_input {
            continue;
        }
        let buf = inputs[leaf.input];
        let pos = added.iter().position(|&b| b == buf).unwrap_or_else(|| {
            added.push(buf);
            added.len() - 1
        });
        leaf.input = base + pos;
    }
    mm.epilogue = Some(Box::new(Epilogue {
        inputs: added.len(),
        elem: Some(elem),
        c_leaf,
        norm: None,
    }));
    let numel: usize = shape.iter().product();
    kernel.flops += (numel * k.nodes.len()) as f64;
    kernel.bytes += (4 * numel * added.len()) as f64;
    kernel.inputs.extend(added);
    kernel.outputs = vec![cx.result_buffer(ValueId::first(root))];
    kernel.nodes.extend_from_slice(members);
    let names: Vec<&str> = members.iter().map(|&n| cx.g.node(n).op.name()).collect();
    kernel.name = format!("{}_{}", kernel.name, names.join("_"));
    move_to_end(cx, kernel);
    true
}

/// Fuses the layer norm `id` over the last axis into the product computing
/// its input, if that product owns whole rows of C. Returns whether it did.
pub fn absorb_layernorm(cx: &mut Lower, id: NodeId, eps: f32) -> bool {
    let g = cx.g;
    let ops = g.operands(id);
    let Op::LayerNorm { axis, .. } = g.node(id).op else {
        return false;
    };
    let x = g.ty(ops[0]);
    if axis + 1 != x.rank() || x.dtype != DType::F32 || ops[0].result != 0 {
        return false;
    }
    let Some(at) = product_of(cx, cx.buf(ops[0]), &[id]) else {
        return false;
    };
    let KernelOp::MatMul(mm) = &cx.out.kernels[at].op else {
        return false;
    };
    let whole_rows = !(mm.packed() && mm.split_columns());
    let norm_free = mm.epilogue.as_ref().is_none_or(|e| e.norm.is_none());
    if !whole_rows || !norm_free || mm.n != x.shape[axis] {
        return false;
    }
    let (gamma, beta) = (cx.buf(ops[1]), cx.buf(ops[2]));
    let mut kernel = cx.out.kernels.remove(at);
    let KernelOp::MatMul(mm) = &mut kernel.op else {
        unreachable!("checked above")
    };
    let first = kernel.inputs.len();
    let epi = mm.epilogue.get_or_insert_with(|| {
        Box::new(Epilogue {
            inputs: 0,
            elem: None,
            c_leaf: 0,
            norm: None,
        })
    });
    epi.inputs += 2;
    epi.norm = Some(RowNorm {
        gamma: first,
        beta: first + 1,
        eps,
    });
    let numel = x.numel();
    kernel.flops += (8 * numel) as f64;
    kernel.bytes += (8 * mm.n) as f64;
    kernel.inputs.extend([gamma, beta]);
    kernel.outputs = vec![cx.result_buffer(ValueId::first(id))];
    kernel.nodes.push(id);
    kernel.name = format!("{}_layernorm", kernel.name);
    move_to_end(cx, kernel);
    true
}

/// The index of the matmul kernel that writes `buf` as its only output, when
/// `buf` is a temporary whose value is read by no node outside `consumers`.
fn product_of(cx: &Lower, buf: BufId, consumers: &[NodeId]) -> Option<usize> {
    if cx.out.buffers[buf.index()].kind != BufferKind::Temp {
        return None;
    }
    let at = cx
        .out
        .kernels
        .iter()
        .rposition(|k| k.outputs == [buf] && matches!(k.op, KernelOp::MatMul(_)))?;
    let producer = *cx.out.kernels[at].nodes.last()?;
    let readers_fused = cx.g.users(producer).all(|u| consumers.contains(&u));
    let other_kernel_reads = (cx.out.kernels[at + 1..].iter()).any(|k| k.inputs.contains(&buf));
    (readers_fused && !other_kernel_reads).then_some(at)
}

/// Appends a product taken out of the kernel list, now with its consumer,
/// after the kernels that compute the consumer's other inputs. It keeps its
/// `k<index>_` prefix: a new one (`push_kernel` numbers by the list's length)
/// could repeat another kernel's after a product from the middle of the list
/// moved, and Cranelift rejects two functions of one name.
fn move_to_end(cx: &mut Lower, kernel: Kernel) {
    cx.out.kernels.push(kernel);
}
