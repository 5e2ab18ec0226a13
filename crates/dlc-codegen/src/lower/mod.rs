//! Lowering: a verified graph becomes a list of [`Kernel`]s over [`Buffer`]s.
//!
//! Sources get buffers of their own kind (inputs, parameters, constants);
//! every other value gets the buffer its kernel writes, except reshapes, which
//! alias their operand's buffer (a reshape is a view and costs nothing).
//! Elementwise nodes used once by another elementwise node of the same size are
//! inlined into their consumer's kernel, and transposes read only by matmuls
//! become strided matmul operands (see [`fusion`]). Graph outputs are
//! written straight into the caller's output arrays where possible.

mod backward;
mod elementwise;
mod epilogue;
mod fusion;
mod grid_grad;
mod norm;
mod ops;
mod recurrent_grad;
mod sequence;
mod spatial;

use std::collections::HashMap;

use dlc_ir::{DType, Graph, NodeId, Op, ValueId};

pub use fusion::folded_transposes;

use crate::CodegenError;
use crate::kernel::{BufId, Buffer, BufferKind, CopyKernel, Kernel, KernelOp};

/// The result of lowering: buffers, kernels in execution order, and the bindings
/// of the graph's inputs, parameters and outputs.
#[derive(Clone, Debug, Default)]
pub struct Lowered {
    /// Every buffer.
    pub buffers: Vec<Buffer>,
    /// Kernels in execution order.
    pub kernels: Vec<Kernel>,
    /// Graph inputs: name and buffer, in declaration order.
    pub inputs: Vec<(String, BufId)>,
    /// Parameters: name and buffer, in declaration order.
    pub params: Vec<(String, BufId)>,
    /// Graph outputs: name and buffer, in output order.
    pub outputs: Vec<(String, BufId)>,
}

/// Lowers a verified graph; `native` says that the native (AVX2) kernels will
/// run, which moves some choices (convolutions with few output channels run
/// direct on the native tier, see `spatial::conv_gemm`).
pub fn lower(g: &Graph, native: bool) -> Result<Lowered, CodegenError> {
    let mut cx = Lower {
        g,
        native,
        out: Lowered::default(),
        value_buf: HashMap::new(),
        fused: fusion::fused_nodes(g),
        folded: fusion::folded_transposes(g),
        absorbed: std::collections::HashSet::new(),
        output_of: HashMap::new(),
    };
    for (i, out) in g.outputs().iter().enumerate() {
        cx.output_of.entry(out.value).or_insert(i);
    }
    for id in g.node_ids() {
        cx.lower_node(id)?;
    }
    cx.bind_outputs();
    Ok(cx.out)
}

/// Simplifies an iteration space read through several strided accesses: drops
/// size-1 dims and merges each dim into its outer neighbour when every access
/// walks the pair contiguously (`outer stride == inner stride × inner size`).
/// Returns the new shape (never empty) and each access's strides for it.
pub(crate) fn collapse_dims(
    shape: &[usize],
    accesses: &[Vec<usize>],
) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut merged: Vec<(usize, Vec<usize>)> = Vec::new();
    for d in (0..shape.len()).filter(|&d| shape[d] != 1) {
        let s: Vec<usize> = accesses.iter().map(|a| a[d]).collect();
        if let Some((psize, ps)) = merged.last_mut()
            && ps
                .iter()
                .zip(&s)
                .all(|(&outer, &inner)| outer == inner * shape[d])
        {
            *psize *= shape[d];
            *ps = s;
            continue;
        }
        merged.push((shape[d], s));
    }
    if merged.is_empty() {
        merged.push((1, vec![0; accesses.len()]));
    }
    let dims = merged.iter().map(|(n, _)| *n).collect();
    let strides = (0..accesses.len())
        .map(|j| merged.iter().map(|(_, s)| s[j]).collect())
        .collect();
    (dims, strides)
}

/// Lowering state.
pub(crate) struct Lower<'g> {
    pub(crate) g: &'g Graph,
    /// The native kernel tier will run the kernels.
    pub(crate) native: bool,
    pub(crate) out: Lowered,
    value_buf: HashMap<ValueId, BufId>,
    fused: std::collections::HashSet<NodeId>,
    /// Transposes read by their matmul users as views ([`fusion::folded_transposes`]).
    pub(crate) folded: std::collections::HashSet<NodeId>,
    /// Nodes computed by their operand's kernel (a ReLU applied at a
    /// convolution's store); they get no kernel of their own.
    pub(crate) absorbed: std::collections::HashSet<NodeId>,
    /// Graph values that are outputs, with the index of their first output slot.
    output_of: HashMap<ValueId, usize>,
}

impl<'g> Lower<'g> {
    fn lower_node(&mut self, id: NodeId) -> Result<(), CodegenError> {
        let node = self.g.node(id);
        let v0 = ValueId::first(id);
        match &node.op {
            Op::Input => {
                let i = self.out.inputs.len();
                let b = self.new_buffer(BufferKind::Input(i), v0);
                self.out.inputs.push((node.names[0].clone(), b));
                self.value_buf.insert(v0, b);
            }
            Op::Param { .. } => {
                let i = self.out.params.len();
                let b = self.new_buffer(BufferKind::Param(i), v0);
                self.out.params.push((node.names[0].clone(), b));
                self.value_buf.insert(v0, b);
            }
            Op::Const { .. } => {
                let b = self.new_buffer(BufferKind::Const(id), v0);
                self.value_buf.insert(v0, b);
            }
            Op::Reshape { .. } => {
                let src = self.buf(self.g.operands(id)[0]);
                self.value_buf.insert(v0, src);
            }
            _ if self.fused.contains(&id)
                || self.folded.contains(&id)
                || self.absorbed.contains(&id) => {}
            // Training dropout is elementwise too, but never fused into a consumer
            // (its mask hashes the element index), so `is_elementwise` excludes it.
            op if op.is_elementwise() || matches!(op, Op::Dropout { .. }) => {
                elementwise::lower(self, id)?
            }
            _ => ops::lower(self, id)?,
        }
        Ok(())
    }

    /// The buffer holding a value.
    pub(crate) fn buf(&self, v: ValueId) -> BufId {
        self.value_buf[&v]
    }

    /// Creates a buffer sized for value `v`.
    fn new_buffer(&mut self, kind: BufferKind, v: ValueId) -> BufId {
        let ty = self.g.ty(v);
        self.push_buffer(Buffer {
            kind,
            dtype: ty.dtype,
            len: ty.numel(),
            name: self.g.value_name(v).to_string(),
        })
    }

    fn push_buffer(&mut self, b: Buffer) -> BufId {
        self.out.buffers.push(b);
        BufId(self.out.buffers.len() as u32 - 1)
    }

    /// The buffer a kernel should write value `v` into: the caller's output array
    /// when `v` is a graph output, else a new arena buffer.
    pub(crate) fn result_buffer(&mut self, v: ValueId) -> BufId {
        let kind = match self.output_of.remove(&v) {
            Some(i) => BufferKind::Output(i),
            None => BufferKind::Temp,
        };
        let b = self.new_buffer(kind, v);
        self.value_buf.insert(v, b);
        b
    }

    /// A scratch buffer of `len` elements, live only inside the kernels that use it.
    pub(crate) fn temp_buffer(&mut self, dtype: DType, len: usize, name: String) -> BufId {
        self.push_buffer(Buffer {
            kind: BufferKind::Temp,
            dtype,
            len,
            name,
        })
    }

    /// Appends a kernel; its name gets a unique numeric prefix.
    pub(crate) fn push_kernel(&mut self, mut k: Kernel) {
        k.name = format!("k{}_{}", self.out.kernels.len(), k.name);
        self.out.kernels.push(k);
    }

    /// Binds every graph output to a buffer of kind `Output`, adding copies for
    /// outputs whose value lives elsewhere (an input, a parameter, a reshape of
    /// one, or a value output under two names).
    fn bind_outputs(&mut self) {
        for (i, out) in self.g.outputs().iter().enumerate() {
            let b = self.buf(out.value);
            let buffer = &mut self.out.buffers[b.index()];
            let claimable =
                buffer.kind == BufferKind::Temp && !self.out.outputs.iter().any(|(_, o)| *o == b);
            let target = if buffer.kind == BufferKind::Output(i) {
                b
            } else if claimable {
                buffer.kind = BufferKind::Output(i);
                b
            } else {
                let ty = self.g.ty(out.value).clone();
                let dst = self.push_buffer(Buffer {
                    kind: BufferKind::Output(i),
                    dtype: ty.dtype,
                    len: ty.numel(),
                    name: out.name.clone(),
                });
                let n = ty.numel();
                self.push_kernel(Kernel {
                    name: format!("copy_{}", out.name),
                    op: KernelOp::Copy(CopyKernel {
                        shape: vec![n],
                        src_strides: vec![1],
                        src_offset: 0,
                        dst_strides: vec![1],
                        dst_offset: 0,
                        dtype: ty.dtype,
                    }),
                    inputs: vec![b],
                    outputs: vec![dst],
                    parallel: n,
                    flops: 0.0,
                    bytes: 2.0 * ty.size_bytes() as f64,
                    nodes: vec![],
                    in_place: vec![],
                });
                dst
            };
            self.out.outputs.push((out.name.clone(), target));
        }
    }
}
