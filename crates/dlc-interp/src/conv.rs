//! Convolution and transposed convolution over 1 or 2 (or any number of) spatial dims.
//!
//! Layouts: `x [N, C, *spatial]`; conv weight OIHW `[O, C/groups, *kernel]`;
//! transposed-conv weight IOHW `[Cin, Cout/groups, *kernel]`. Both are written
//! directly from their defining sums (a gather for conv, a scatter for the transpose).

use dlc_ir::{ConvAttrs, ConvTransposeAttrs};
use dlc_tensor::Value;
use ndarray::{ArrayD, Dimension, IxDyn};

use crate::array::{OpResult, float};
use crate::float::Float;

/// The optional bias operand (third), as a float array.
fn bias<'a, F>(args: &[&'a Value<F>]) -> Result<Option<&'a ArrayD<F>>, String> {
    args.get(2).map(|b| float(b)).transpose()
}

/// Cross-correlation:
/// `out[n,o,p] = b[o] + Σ_{c,u} w[o,c,u] · x[n, g(o)·C/groups + c, p·stride + u·dilation − pad_before]`
/// with out-of-range input positions reading zero.
pub(crate) fn conv<F: Float>(a: &ConvAttrs, args: &[&Value<F>]) -> OpResult<F> {
    let (x, w) = (float(args[0])?, float(args[1])?);
    let b = bias(args)?;
    let sp = a.stride.len();
    let (n, cin, o) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let (cg, og) = (cin / a.groups, o / a.groups);
    let mut out_shape = vec![n, o];
    for d in 0..sp {
        let span = a.dilation[d] * (w.shape()[2 + d] - 1) + 1;
        let padded = x.shape()[2 + d] + a.padding[d].0 + a.padding[d].1;
        if padded < span {
            return Err("kernel does not fit the padded input".into());
        }
        out_shape.push((padded - span) / a.stride[d] + 1);
    }
    let kernel = IxDyn(&w.shape()[2..]);
    let (mut xi, mut wi) = (vec![0usize; sp + 2], vec![0usize; sp + 2]);
    let out = ArrayD::from_shape_fn(IxDyn(&out_shape), |idx| {
        let (bn, oc) = (idx[0], idx[1]);
        let g = oc / og;
        let mut acc = b.map_or(F::zero(), |b| b[[oc]]);
        for c in 0..cg {
            for u in ndarray::indices(kernel.clone()) {
                // Input position of kernel tap `u`, or skip it if it falls in the padding.
                let mut inside = true;
                for d in 0..sp {
                    let pos = (idx[2 + d] * a.stride[d] + u[d] * a.dilation[d]) as isize
                        - a.padding[d].0 as isize;
                    inside &= pos >= 0 && (pos as usize) < x.shape()[2 + d];
                    xi[2 + d] = pos.max(0) as usize;
                }
                if inside {
                    (xi[0], xi[1]) = (bn, g * cg + c);
                    (wi[0], wi[1]) = (oc, c);
                    wi[2..].copy_from_slice(u.slice());
                    acc += w[&wi[..]] * x[&xi[..]];
                }
            }
        }
        acc
    });
    Ok(vec![Value::Float(out)])
}

/// Transposed convolution (the gradient of conv w.r.t. its input): every input
/// element scatters `x[n,c,i] · w[c,oc,u]` to output position
/// `i·stride + u·dilation − pad_before` of channel `g(c)·Cout/groups + oc`;
/// positions outside the (cropped, output-padded) output are dropped.
pub(crate) fn conv_transpose<F: Float>(a: &ConvTransposeAttrs, args: &[&Value<F>]) -> OpResult<F> {
    let (x, w) = (float(args[0])?, float(args[1])?);
    let b = bias(args)?;
    let sp = a.stride.len();
    let (n, cin) = (x.shape()[0], x.shape()[1]);
    let (cg, og) = (cin / a.groups, w.shape()[1]);
    let mut out_shape = vec![n, og * a.groups];
    for d in 0..sp {
        let full = (x.shape()[2 + d] - 1) * a.stride[d]
            + a.dilation[d] * (w.shape()[2 + d] - 1)
            + a.output_padding[d]
            + 1;
        let crop = a.padding[d].0 + a.padding[d].1;
        if full <= crop {
            return Err("padding crops away the whole output".into());
        }
        out_shape.push(full - crop);
    }
    let mut out = ArrayD::from_shape_fn(IxDyn(&out_shape), |idx| {
        b.map_or(F::zero(), |b| b[[idx[1]]])
    });
    let kernel = IxDyn(&w.shape()[2..]);
    let (mut oi, mut wi) = (vec![0usize; sp + 2], vec![0usize; sp + 2]);
    for (xi, &xv) in x.indexed_iter() {
        let (bn, c) = (xi[0], xi[1]);
        let g = c / cg;
        for oc in 0..og {
            for u in ndarray::indices(kernel.clone()) {
                let mut inside = true;
                for d in 0..sp {
                    let pos = (xi[2 + d] * a.stride[d] + u[d] * a.dilation[d]) as isize
                        - a.padding[d].0 as isize;
                    inside &= pos >= 0 && (pos as usize) < out_shape[2 + d];
                    oi[2 + d] = pos.max(0) as usize;
                }
                if inside {
                    (oi[0], oi[1]) = (bn, g * og + oc);
                    (wi[0], wi[1]) = (c, oc);
                    wi[2..].copy_from_slice(u.slice());
                    out[&oi[..]] += xv * w[&wi[..]];
                }
            }
        }
    }
    Ok(vec![Value::Float(out)])
}
