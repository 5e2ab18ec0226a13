//! The fused consumers of a product (see [`Epilogue`]): applied to whole rows
//! of C once the product has finished them, while they are still in cache.
//! Each row gets the elementwise expression (f32x4 lanes where the expression
//! allows, as in a standalone elementwise kernel), then the row normalisation
//! (the layer-norm kernel's statistics and normalisation pass).

use cranelift_codegen::ir::{InstBuilder, Value};

use crate::emit::builder::KernelBuilder;
use crate::emit::elementwise::{emit_row, vectorizable};
use crate::emit::norm::rows::S;
use crate::emit::norm::stats::{Affine, inv_std, normalise, stats};
use crate::kernel::{ElemKernel, Epilogue, MatMulKernel};

/// Applies the product's epilogue (if any) to rows `rows` (flat indices over
/// `batch × m`) and columns `cols` of C. A row normalisation needs every
/// column: lowering fuses one only into products that own whole rows.
pub fn apply(
    kb: &mut KernelBuilder,
    mm: &MatMulKernel,
    rows: (Value, Value),
    cols: (Value, Value),
) {
    let Some(epi) = mm.epilogue.as_deref() else {
        return;
    };
    let c = mm.c_arg();
    let n = mm.n;
    let elem = epi.elem.as_ref().map(|e| with_c(e, epi, c));
    kb.for_range(rows.0, rows.1, 1, &[], |kb, r, _| {
        let row = kb.b.ins().imul_imm_s(r, n as i64);
        if let Some(e) = &elem {
            let mut bases = leaf_bases(kb, e, r);
            bases.push(row);
            let last = e.shape.len() - 1;
            let strides: Vec<usize> = (e.leaves.iter().map(|l| l.strides[last]))
                .chain([1])
                .collect();
            emit_row(kb, e, c, vectorizable(e), cols, &bases, &strides);
        }
        if let Some(norm) = epi.norm {
            let (mean, var) = stats(kb, c, row, 1, 0, n);
            let inv = inv_std(kb, S, var, norm.eps);
            let affine = (Affine::Row(norm.gamma), Affine::Row(norm.beta));
            normalise(kb, (c, c), row, n, (mean, inv), affine);
        }
        vec![]
    });
}

/// The expression with its C leaf reading argument `c`.
fn with_c(e: &ElemKernel, epi: &Epilogue, c: usize) -> ElemKernel {
    let mut e = e.clone();
    e.leaves[epi.c_leaf].input = c;
    e
}

/// Each leaf's element offset at column 0 of flat row `r`: the row's
/// coordinates over the expression's outer dims, times the leaf's strides.
fn leaf_bases(kb: &mut KernelBuilder, e: &ElemKernel, r: Value) -> Vec<Value> {
    let outer = &e.shape[..e.shape.len() - 1];
    let mut coords = vec![r; outer.len()];
    let mut rest = r;
    for d in (1..outer.len()).rev() {
        coords[d] = kb.b.ins().urem_imm_u(rest, outer[d] as i64);
        rest = kb.b.ins().udiv_imm_u(rest, outer[d] as i64);
    }
    if let Some(first) = coords.first_mut() {
        *first = rest;
    }
    e.leaves
        .iter()
        .map(|leaf| {
            let mut base = kb.int(leaf.offset as i64);
            for (&coord, &stride) in coords.iter().zip(&leaf.strides) {
                base = kb.add_scaled(base, coord, stride);
            }
            base
        })
        .collect()
}
