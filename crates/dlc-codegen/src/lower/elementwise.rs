//! Lowering of fused elementwise groups to one [`ElemKernel`] each.

use std::collections::HashMap;

use dlc_ir::types::strides;
use dlc_ir::{DType, NodeId, Op, ValueId};

use super::Lower;
use crate::CodegenError;
use crate::kernel::{BufId, ElemKernel, ElemNode, Kernel, KernelOp, Leaf};

/// Builds the expression rooted at `root` (pulling in fused producers) and emits its kernel.
pub fn lower(cx: &mut Lower, root: NodeId) -> Result<(), CodegenError> {
    let g = cx.g;
    let out_ty = g.ty(ValueId::first(root)).clone();
    let mut b = ExprBuilder {
        cx,
        shape: out_ty.shape.clone(),
        k: ElemKernel {
            shape: vec![],
            leaves: vec![],
            nodes: vec![],
            dtypes: vec![],
        },
        inputs: vec![],
        memo: HashMap::new(),
        members: vec![],
    };
    b.node(root)?;
    let ExprBuilder {
        mut k,
        inputs,
        members,
        shape,
        ..
    } = b;
    if super::epilogue::absorb_elementwise(cx, &k, &shape, &inputs, &members, root) {
        return Ok(());
    }
    collapse(&mut k, &shape);
    let numel = out_ty.numel();
    let out = cx.result_buffer(ValueId::first(root));
    // The output may overwrite a leaf read at exactly the output's positions.
    let out_strides = strides(&k.shape);
    let in_place = k
        .leaves
        .iter()
        .filter(|l| {
            l.offset == 0
                && (l.strides.iter().zip(&out_strides).zip(&k.shape))
                    .all(|((&s, &o), &d)| s == o || d == 1)
        })
        .filter(|l| cx.out.buffers[inputs[l.input].index()].dtype == out_ty.dtype)
        .map(|l| (l.input, 0))
        .collect();
    let names: Vec<&str> = members.iter().map(|&n| g.node(n).op.name()).collect();
    cx.push_kernel(Kernel {
        name: names.join("_"),
        parallel: k.shape[0],
        flops: (numel * k.nodes.len()) as f64,
        bytes: (numel * (k.leaves.len() + 1) * out_ty.dtype.size_bytes()) as f64,
        op: KernelOp::Elementwise(k),
        inputs,
        outputs: vec![out],
        nodes: members,
        in_place,
    });
    Ok(())
}

struct ExprBuilder<'a, 'g> {
    cx: &'a mut Lower<'g>,
    /// The kernel's (uncollapsed) iteration shape: the root's shape.
    shape: Vec<usize>,
    k: ElemKernel,
    inputs: Vec<BufId>,
    memo: HashMap<ValueId, usize>,
    members: Vec<NodeId>,
}

impl ExprBuilder<'_, '_> {
    fn push(&mut self, n: ElemNode, dt: DType) -> usize {
        self.k.nodes.push(n);
        self.k.dtypes.push(dt);
        self.k.nodes.len() - 1
    }

    /// The expression index of a value: inlined if its producer is fused, else a leaf.
    fn value(&mut self, v: ValueId) -> Result<usize, CodegenError> {
        if let Some(&i) = self.memo.get(&v) {
            return Ok(i);
        }
        let g = self.cx.g;
        let i = if self.cx.fused.contains(&v.node) {
            match &g.node(v.node).op {
                Op::BroadcastTo { .. } => {
                    let src = g.operands(v.node)[0];
                    self.value(src)?
                }
                Op::Slice { .. } => {
                    let (src, view, offset) = self.slice_view(v);
                    self.leaf(src, &g.ty(v).shape, &view, offset)
                }
                _ => self.node(v.node)?,
            }
        } else {
            let ty = g.ty(v);
            self.leaf(v, &ty.shape, &strides(&ty.shape), 0)
        };
        self.memo.insert(v, i);
        Ok(i)
    }

    /// The value a fused slice `v` reads (through any chain of fused slices), with
    /// the element strides and offset of `v` in it.
    fn slice_view(&self, v: ValueId) -> (ValueId, Vec<usize>, usize) {
        let g = self.cx.g;
        let (Op::Slice { ranges }, true) = (&g.node(v.node).op, self.cx.fused.contains(&v.node))
        else {
            return (v, strides(&g.ty(v).shape), 0);
        };
        let (src, st, off) = self.slice_view(g.operands(v.node)[0]);
        let view = ranges.iter().zip(&st).map(|(r, s)| r.step * s).collect();
        let offset = off
            + ranges
                .iter()
                .zip(&st)
                .map(|(r, s)| r.start * s)
                .sum::<usize>();
        (src, view, offset)
    }

    /// A read of value `v`'s buffer as a tensor of `shape` with element
    /// `strides` from element `offset` (the value itself, or a slice of it).
    fn leaf(&mut self, v: ValueId, shape: &[usize], strides: &[usize], offset: usize) -> usize {
        let dtype = self.cx.g.ty(v).dtype;
        let buf = self.cx.buf(v);
        let input = match self.inputs.iter().position(|&b| b == buf) {
            Some(p) => p,
            None => {
                self.inputs.push(buf);
                self.inputs.len() - 1
            }
        };
        let leaf = Leaf {
            input,
            strides: view_strides(shape, strides, &self.shape),
            offset,
            dtype,
        };
        let j = match self.k.leaves.iter().position(|l| *l == leaf) {
            Some(j) => j,
            None => {
                self.k.leaves.push(leaf);
                self.k.leaves.len() - 1
            }
        };
        self.push(ElemNode::Leaf(j), dtype)
    }

    fn node(&mut self, id: NodeId) -> Result<usize, CodegenError> {
        let g = self.cx.g;
        let node = g.node(id);
        let args = g.operands(id);
        let mut a = Vec::with_capacity(args.len());
        for &v in &args {
            a.push(self.value(v)?);
        }
        let dt = node.types[0].dtype;
        let e = match &node.op {
            Op::Unary(u) => ElemNode::Unary(*u, a[0]),
            Op::Binary(b) => ElemNode::Binary(*b, a[0], a[1]),
            Op::LeakyRelu { alpha } => ElemNode::LeakyRelu(*alpha, a[0]),
            Op::Elu { alpha } => ElemNode::Elu(*alpha, a[0]),
            Op::Clamp { min, max } => ElemNode::Clamp(*min, *max, a[0]),
            Op::Where => ElemNode::Where(a[0], a[1], a[2]),
            Op::Cast { to } => ElemNode::Cast(*to, a[0]),
            Op::Dropout { p, seed, training } => {
                if *training {
                    ElemNode::Dropout {
                        p: *p as f32,
                        seed: *seed,
                        x: a[0],
                    }
                } else {
                    self.members.push(id);
                    return Ok(a[0]);
                }
            }
            other => {
                return Err(CodegenError::Internal(format!(
                    "{} is not elementwise",
                    other.name()
                )));
            }
        };
        self.members.push(id);
        Ok(self.push(e, dt))
    }
}

/// Element strides of a row-major value of `shape` read at every index of the
/// broadcast iteration space `out` (0 along broadcast dims).
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    view_strides(shape, &strides(shape), out)
}

/// Element strides of a view of `shape` with element `strides` read at every
/// index of the broadcast iteration space `out` (0 along broadcast dims).
fn view_strides(shape: &[usize], strides: &[usize], out: &[usize]) -> Vec<usize> {
    let lead = out.len() - shape.len();
    (0..out.len())
        .map(|d| {
            if d < lead || shape[d - lead] == 1 {
                0
            } else {
                strides[d - lead]
            }
        })
        .collect()
}

/// Drops size-1 dims and merges adjacent dims that every access walks contiguously.
fn collapse(k: &mut ElemKernel, shape: &[usize]) {
    let mut accesses: Vec<Vec<usize>> = k.leaves.iter().map(|l| l.strides.clone()).collect();
    accesses.push(strides(shape));
    let (merged, strides) = super::collapse_dims(shape, &accesses);
    k.shape = merged;
    for (leaf, s) in k.leaves.iter_mut().zip(strides) {
        leaf.strides = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_strides_follow_numpy() {
        assert_eq!(broadcast_strides(&[5, 1], &[4, 5, 6]), vec![0, 1, 0]);
        assert_eq!(broadcast_strides(&[4, 1, 6], &[4, 5, 6]), vec![6, 0, 1]);
    }
}
