//! Attribute lowering of the backward ops whose attributes need more than one
//! line: the convolution weight gradient and the pooling gradients.

use super::attrs::{Attrs, Pad};
use super::diagnostic::Diagnostic;
use super::table::OpSpec;
use crate::op::{ConvAttrs, Op, PoolAttrs, PoolKind};
use crate::span::Span;

/// `conv{1,2}d_weight_grad(x, dy, kernel=.., stride=.., padding=.., dilation=.., groups=..)`.
pub(super) fn conv_weight_grad(at: &Attrs, n: usize, span: Span) -> Result<Op, Diagnostic> {
    let Some(kernel) = at.sizes("kernel", n, 1)? else {
        return Err(
            Diagnostic::new("this op needs the attribute `kernel`", span)
                .with_label("missing `kernel=...`"),
        );
    };
    let stride = at.sizes("stride", n, 1)?.unwrap_or_default();
    let dilation = at.sizes("dilation", n, 1)?.unwrap_or_default();
    let padding = match at.padding("padding", n)? {
        Pad::Explicit(p) => p,
        Pad::Valid => vec![(0, 0); n],
        Pad::Same => (0..n)
            .map(|d| {
                let total = dilation[d].saturating_mul(kernel[d].saturating_sub(1));
                (total / 2, total - total / 2)
            })
            .collect(),
    };
    Ok(Op::ConvWeightGrad {
        conv: ConvAttrs {
            stride,
            padding,
            dilation,
            groups: at.size("groups", span)?,
        },
        kernel,
    })
}

/// `{max,avg}_pool{1,2}d_grad(x, dy, kernel=.., stride=.., padding=..)`.
pub(super) fn pool_grad(
    at: &Attrs,
    name: &str,
    spec: &OpSpec,
    span: Span,
) -> Result<Op, Diagnostic> {
    let n = if name.contains("1d") { 1 } else { 2 };
    let kind = if name.starts_with("max") {
        PoolKind::Max
    } else {
        PoolKind::Avg {
            count_include_pad: at.bool("count_include_pad"),
        }
    };
    let Some(kernel) = at.sizes("kernel", n, 1)? else {
        return Err(
            Diagnostic::new(format!("`{name}` needs the attribute `kernel`"), span)
                .with_label("missing `kernel=...`")
                .with_note(format!("example: {}", spec.example)),
        );
    };
    let stride = at.sizes("stride", n, 1)?.unwrap_or(kernel.clone());
    let padding = match at.padding("padding", n)? {
        Pad::Explicit(p) => p,
        Pad::Valid => vec![(0, 0); n],
        Pad::Same => {
            return Err(
                Diagnostic::new("pooling does not take \"same\" padding", span)
                    .with_label("give sizes"),
            );
        }
    };
    Ok(Op::PoolGrad(PoolAttrs {
        kind,
        kernel,
        stride,
        padding,
    }))
}
