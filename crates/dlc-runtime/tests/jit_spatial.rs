//! The JIT against the reference interpreter on convolutions, transposed
//! convolutions and pooling: random graphs of each family, and hand-picked
//! geometries (odd sizes, depthwise and grouped channels, dilation with padding,
//! strides beyond the kernel, asymmetric padding), each in normal and checked mode;
//! convolutions large enough for the implicit-GEMM path, and direct ones, on
//! both kernel tiers.

mod common;

use common::{check, check_opts};
use dlc_ir::{
    ConvAttrs, ConvTransposeAttrs, Graph, Init, Op, PoolAttrs, PoolKind, TensorType, UnaryOp,
    ValueId,
};
use dlc_runtime::{CompiledModel, RuntimeOptions, Threading};
use dlc_testgen::{Case, Family, GenConfig, random_values};
use proptest::prelude::*;

macro_rules! family_test {
    ($name:ident, $checked_name:ident, $family:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $name(case in dlc_testgen::arb_case(GenConfig::only($family))) {
                check(&case, false)?;
            }
        }
        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $checked_name(case in dlc_testgen::arb_case(GenConfig::only($family))) {
                check(&case, true)?;
            }
        }
    };
}

family_test!(random_conv, random_conv_checked, Family::Conv);
family_test!(
    random_conv_transpose,
    random_conv_transpose_checked,
    Family::ConvTranspose
);
family_test!(random_pool, random_pool_checked, Family::Pool);

/// Runs a case with kernels split over `threads` threads whatever their size.
fn run_threaded(case: &Case, threads: usize) -> dlc_tensor::Env {
    let opts = RuntimeOptions {
        threading: Threading {
            threads,
            min_split_us: 0.0,
        },
        ..RuntimeOptions::default()
    };
    let model = CompiledModel::new(&case.graph, &case.params, &opts).expect("compiles");
    model.run(&case.inputs).expect("runs")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
    /// Each parallel index owns its outputs, so split runs are bit-identical.
    #[test]
    fn threaded_runs_are_bit_identical(case in dlc_testgen::arb_case(GenConfig::default().with_families(&[
        Family::Conv, Family::ConvTranspose, Family::Pool,
    ]))) {
        prop_assert_eq!(run_threaded(&case, 1), run_threaded(&case, 3));
    }
}

/// A one-op case: input `x`, parameters `w` (and `b`) for the op's other operands.
fn case(op: Op, x: &[usize], params: &[&[usize]], seed: u64) -> Case {
    let mut g = Graph::new("spatial");
    let mut args = vec![
        g.add_source(Op::Input, "x", TensorType::f32(x.to_vec()), None)
            .unwrap(),
    ];
    for (i, shape) in params.iter().enumerate() {
        let ty = TensorType::f32(shape.to_vec());
        let p = Op::Param {
            init: Init::Uniform { lo: -1.0, hi: 1.0 },
        };
        args.push(g.add_source(p, ["w", "b"][i], ty, None).unwrap());
    }
    let y = g.add_anon(op, &args).unwrap();
    g.add_output("y", ValueId::first(y));
    let (inputs, params) = random_values(&g, seed);
    Case {
        seed,
        ops: 1,
        graph: g,
        inputs,
        params,
    }
}

/// Checks a case in normal and in checked mode.
fn check_both(case: &Case) {
    for checked in [false, true] {
        if let Err(e) = check(case, checked) {
            panic!("checked={checked}: {e}");
        }
    }
}

/// One spatial axis of a convolution: kernel extent, stride, padding (before,
/// after) and dilation.
type Axis = (usize, usize, (usize, usize), usize);

/// conv over `x` with weight `[o, c/groups, *kernel]`, optional bias, one
/// [`Axis`] per spatial dimension of `x`.
fn conv(x: &[usize], o: usize, groups: usize, bias: bool, axes: &[Axis]) {
    let kernel: Vec<usize> = axes.iter().map(|a| a.0).collect();
    let w = [&[o, x[1] / groups][..], &kernel].concat();
    let attrs = ConvAttrs {
        stride: axes.iter().map(|a| a.1).collect(),
        padding: axes.iter().map(|a| a.2).collect(),
        dilation: axes.iter().map(|a| a.3).collect(),
        groups,
    };
    let b = [o];
    let params: Vec<&[usize]> = if bias { vec![&w, &b] } else { vec![&w] };
    check_both(&case(Op::Conv(attrs), x, &params, 7));
}

/// One spatial axis of a transposed convolution: kernel extent, stride,
/// padding (before, after), output padding and dilation.
type AxisT = (usize, usize, (usize, usize), usize, usize);

/// Transposed conv over `x` with weight `[c, per_group, *kernel]`, optional
/// bias, one [`AxisT`] per spatial dimension of `x`.
fn conv_t(x: &[usize], per_group: usize, groups: usize, bias: bool, axes: &[AxisT]) {
    let kernel: Vec<usize> = axes.iter().map(|a| a.0).collect();
    let w = [&[x[1], per_group][..], &kernel].concat();
    let b = [per_group * groups];
    let attrs = ConvTransposeAttrs {
        stride: axes.iter().map(|a| a.1).collect(),
        padding: axes.iter().map(|a| a.2).collect(),
        output_padding: axes.iter().map(|a| a.3).collect(),
        dilation: axes.iter().map(|a| a.4).collect(),
        groups,
    };
    let params: Vec<&[usize]> = if bias { vec![&w, &b] } else { vec![&w] };
    check_both(&case(Op::ConvTranspose(attrs), x, &params, 11));
}

/// Pooling of `kind` over `x`.
fn pool(
    x: &[usize],
    kind: PoolKind,
    kernel: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
) {
    let attrs = PoolAttrs {
        kind,
        kernel: kernel.to_vec(),
        stride: stride.to_vec(),
        padding: padding.to_vec(),
    };
    check_both(&case(Op::Pool(attrs), x, &[], 13));
}

const ODD: [usize; 5] = [1, 3, 7, 13, 31];
const AVG_IN: PoolKind = PoolKind::Avg {
    count_include_pad: true,
};
const AVG_EX: PoolKind = PoolKind::Avg {
    count_include_pad: false,
};

#[test]
fn conv_odd_sizes() {
    for s in ODD {
        conv(&[2, 3, s, s], 5, 1, true, &[(3, 1, (1, 1), 1); 2]);
        conv(
            &[1, 2, s, 31],
            4,
            1,
            false,
            &[(1, 1, (0, 0), 1), (3, 2, (2, 1), 1)],
        );
        conv(&[3, 2, s], 7, 1, true, &[(3, 1, (2, 0), 1)]);
        conv(&[1, 4, 64 + s], 4, 2, true, &[(5, 1, (2, 2), 1)]);
    }
}

#[test]
fn conv_depthwise_and_groups() {
    conv(&[2, 8, 13, 13], 8, 8, true, &[(3, 1, (1, 1), 1); 2]);
    conv(&[1, 4, 31, 31], 8, 4, false, &[(3, 2, (1, 1), 1); 2]);
    conv(
        &[1, 6, 9, 29],
        9,
        3,
        true,
        &[(3, 1, (0, 0), 1), (5, 1, (2, 2), 1)],
    );
    conv(&[2, 12, 7, 40], 12, 2, true, &[(3, 1, (1, 1), 1); 2]);
    conv(&[1, 7, 33], 7, 7, true, &[(5, 1, (4, 0), 1)]);
}

#[test]
fn conv_dilation_with_padding() {
    conv(&[1, 3, 13, 13], 4, 1, true, &[(3, 1, (2, 2), 2); 2]);
    conv(
        &[2, 2, 31, 31],
        3,
        1,
        false,
        &[(3, 2, (3, 0), 3), (3, 1, (1, 4), 2)],
    );
    conv(&[1, 2, 7, 7], 2, 1, true, &[(3, 1, (4, 4), 3); 2]);
    conv(&[1, 1, 50], 2, 1, true, &[(7, 1, (6, 6), 2)]);
}

#[test]
fn conv_stride_beyond_kernel() {
    conv(&[1, 3, 31, 31], 4, 1, true, &[(2, 3, (0, 0), 1); 2]);
    conv(
        &[2, 2, 13, 45],
        3,
        1,
        false,
        &[(1, 2, (0, 1), 1), (3, 5, (1, 2), 1)],
    );
    conv(&[1, 2, 40], 2, 1, true, &[(2, 4, (1, 1), 1)]);
}

#[test]
fn conv_asymmetric_padding() {
    conv(
        &[1, 2, 13, 13],
        3,
        1,
        true,
        &[(3, 1, (0, 2), 1), (3, 1, (2, 0), 1)],
    );
    conv(
        &[1, 3, 7, 35],
        6,
        1,
        false,
        &[(5, 1, (4, 0), 1), (5, 1, (0, 4), 1)],
    );
    conv(
        &[2, 4, 20, 20],
        6,
        2,
        true,
        &[(3, 2, (2, 1), 1), (3, 2, (1, 2), 1)],
    );
}

#[test]
fn conv_transpose_cases() {
    for s in ODD {
        conv_t(&[1, 3, s, s], 2, 1, true, &[(3, 2, (1, 1), 1, 1); 2]);
        conv_t(&[2, 2, s], 3, 1, false, &[(4, 1, (0, 0), 0, 1)]);
    }
    conv_t(
        &[1, 4, 7, 9],
        3,
        2,
        true,
        &[(3, 3, (2, 0), 2, 1), (3, 2, (0, 1), 1, 1)],
    );
    conv_t(
        &[2, 6, 5, 13],
        1,
        6,
        true,
        &[(3, 1, (1, 2), 0, 2), (5, 2, (3, 1), 1, 1)],
    );
    conv_t(&[1, 2, 9, 9], 2, 1, false, &[(2, 3, (0, 0), 0, 1); 2]);
    conv_t(&[1, 3, 11], 4, 1, true, &[(5, 2, (3, 3), 1, 2)]);
    conv_t(&[1, 2, 40], 8, 1, true, &[(3, 1, (1, 1), 0, 1)]);
    conv_t(&[1, 2, 6, 6], 2, 2, true, &[(3, 2, (2, 2), 1, 2); 2]);
}

#[test]
fn pool_cases() {
    for s in ODD {
        for kind in [PoolKind::Max, AVG_IN, AVG_EX] {
            let k = s.min(3);
            let p = k / 2;
            pool(&[2, 3, s, s], kind, &[k, k], &[2, 2], &[(p, p), (p, p)]);
            pool(&[1, 2, s + 40], kind, &[k], &[1], &[(p, 0)]);
        }
    }
    for kind in [PoolKind::Max, AVG_IN, AVG_EX] {
        pool(&[1, 4, 56, 56], kind, &[2, 2], &[2, 2], &[(0, 0), (0, 0)]);
        pool(&[1, 2, 31, 31], kind, &[2, 3], &[3, 5], &[(1, 0), (0, 1)]);
        pool(&[1, 2, 17, 45], kind, &[5, 5], &[1, 1], &[(2, 1), (0, 2)]);
        pool(&[2, 1, 9, 70], kind, &[3, 3], &[3, 3], &[(1, 1), (1, 1)]);
    }
}

/// Overwrites elements (flat indices) of the input or parameter `name`.
fn poke(case: &mut Case, name: &str, values: &[(usize, f32)]) {
    let env = if name == "x" {
        &mut case.inputs
    } else {
        &mut case.params
    };
    let Some(dlc_tensor::Value::Float(a)) = env.get_mut(name) else {
        panic!("no float value `{name}`");
    };
    let data = a.as_slice_mut().expect("standard layout");
    for &(i, v) in values {
        data[i] = v;
    }
}

/// NaN propagates through max and average pooling, infinities win or poison
/// the average, and padding never wins a max (an all-negative window stays negative).
#[test]
fn pool_special_values() {
    let specials = [
        (0, f32::NAN),
        (23, f32::INFINITY),
        (24, f32::NEG_INFINITY),
        (50, -0.0),
        (77, f32::NAN),
        (130, f32::NEG_INFINITY),
        (131, f32::NEG_INFINITY),
        (152, f32::NEG_INFINITY),
        (153, f32::NEG_INFINITY),
    ];
    for kind in [PoolKind::Max, AVG_IN, AVG_EX] {
        for (kernel, stride, pad) in [(2, 2, 0), (3, 1, 1), (3, 2, 1)] {
            let attrs = PoolAttrs {
                kind,
                kernel: vec![kernel, kernel],
                stride: vec![stride, stride],
                padding: vec![(pad, pad), (pad, pad)],
            };
            let mut c = case(Op::Pool(attrs), &[1, 2, 11, 21], &[], 17);
            poke(&mut c, "x", &specials);
            check_both(&c);
        }
    }
}

/// Kernel taps that fall into the padding are skipped, not multiplied by zero:
/// an infinite weight poisons only the outputs whose tap reads real input.
#[test]
fn conv_padding_taps_are_skipped() {
    let attrs = ConvAttrs {
        stride: vec![1, 1],
        padding: vec![(1, 1), (1, 1)],
        dilation: vec![1, 1],
        groups: 1,
    };
    let mut c = case(Op::Conv(attrs), &[1, 2, 9, 14], &[&[3, 2, 3, 3]], 19);
    poke(&mut c, "w", &[(0, f32::INFINITY), (17, f32::NEG_INFINITY)]);
    check_both(&c);
    let attrs = ConvTransposeAttrs {
        stride: vec![2, 2],
        padding: vec![(1, 1), (1, 1)],
        output_padding: vec![1, 1],
        dilation: vec![1, 1],
        groups: 1,
    };
    let mut c = case(
        Op::ConvTranspose(attrs),
        &[1, 2, 6, 9],
        &[&[2, 3, 3, 3]],
        23,
    );
    poke(&mut c, "w", &[(0, f32::INFINITY), (26, f32::NEG_INFINITY)]);
    check_both(&c);
}

/// A convolution that dlc-codegen runs as implicit GEMM on the portable tier
/// (`conv_gemm` in its spatial lowering): at least 16 output channels per
/// group, and depth `c/groups · taps` and output positions `oh·ow` of at least
/// 16. The native tier runs those with fewer than 32 channels per group direct.
fn takes_gemm_path(x: &[usize], o: usize, kernel: &[usize], groups: usize, out: &[usize]) -> bool {
    let taps: usize = kernel.iter().product();
    o / groups >= 16 && x[1] / groups * taps >= 16 && out.iter().product::<usize>() >= 16
}

/// Random convolutions with output channels per group from `og`: 1-D and 2-D,
/// odd extents (1, 3, 7, 13 and longer 1-D rows), every attribute (stride,
/// asymmetric padding, dilation, groups, bias), batch 1 or 2. Yields the input
/// shape, output channels, kernel, strides, padding, dilation, groups, bias
/// and a seed.
#[allow(clippy::type_complexity)]
fn arb_conv(
    og: Vec<usize>,
) -> impl Strategy<
    Value = (
        Vec<usize>,
        usize,
        Vec<usize>,
        Vec<usize>,
        Vec<(usize, usize)>,
        Vec<usize>,
        usize,
        bool,
        u64,
    ),
> {
    let extent = prop::sample::select(vec![1usize, 3, 7, 13, 20]);
    let row = prop::sample::select(vec![13usize, 31, 100]);
    let axis = |e: BoxedStrategy<usize>| {
        (
            e,
            prop::sample::select(vec![1usize, 3, 7]),
            1usize..=3,
            0usize..=3,
            0usize..=3,
            1usize..=2,
        )
    };
    let axes = prop_oneof![
        prop::collection::vec(axis(extent.boxed()), 2),
        prop::collection::vec(axis(row.boxed()), 1),
    ];
    (
        axes,
        1usize..=2,
        prop::sample::select(vec![1usize, 2, 3, 7, 13]),
        prop::sample::select(og),
        1usize..=2,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(axes, groups, cg, og, n, bias, seed)| {
            let mut x = vec![n, groups * cg];
            x.extend(axes.iter().map(|a| a.0));
            let field = |f: fn(&(usize, usize, usize, usize, usize, usize)) -> usize| {
                axes.iter().map(f).collect::<Vec<_>>()
            };
            let padding = axes.iter().map(|a| (a.3, a.4)).collect();
            (
                x,
                groups * og,
                field(|a| a.1),
                field(|a| a.2),
                padding,
                field(|a| a.5),
                groups,
                bias,
                seed,
            )
        })
}

/// A random convolution from [`arb_conv`].
type ConvCase = (
    Vec<usize>,
    usize,
    Vec<usize>,
    Vec<usize>,
    Vec<(usize, usize)>,
    Vec<usize>,
    usize,
    bool,
    u64,
);

/// The output extents of a convolution (0 where the kernel does not fit).
fn conv_out(
    x: &[usize],
    kernel: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
    dilation: &[usize],
) -> Vec<usize> {
    (0..kernel.len())
        .map(|a| {
            let span = dilation[a] * (kernel[a] - 1) + 1;
            let padded = x[2 + a] + padding[a].0 + padding[a].1;
            if padded >= span {
                (padded - span) / stride[a] + 1
            } else {
                0
            }
        })
        .collect()
}

/// The case of a random convolution.
fn conv_case((x, o, kernel, stride, padding, dilation, groups, bias, seed): ConvCase) -> Case {
    let w = [&[o, x[1] / groups][..], &kernel].concat();
    let attrs = ConvAttrs {
        stride,
        padding,
        dilation,
        groups,
    };
    let b = [o];
    let params: Vec<&[usize]> = if bias { vec![&w, &b] } else { vec![&w] };
    case(Op::Conv(attrs), &x, &params, seed)
}

/// `c` against the interpreter on the native and the portable tier, each
/// normal and checked.
fn check_tiers(c: &Case) -> Result<(), TestCaseError> {
    for (portable, checked) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut opts = RuntimeOptions::default();
        opts.codegen.portable = portable;
        opts.codegen.checked = checked;
        check_opts(c, &opts).map_err(|e| {
            TestCaseError::fail(format!("portable={portable} checked={checked}: {e}"))
        })?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    /// The implicit-GEMM path against the interpreter on the native and the
    /// portable micro-kernel tier, each normal and checked, and split over
    /// three threads bit-identical to one.
    #[test]
    fn gemm_conv_matches_interpreter_on_both_tiers(
        case in arb_conv(vec![16, 17, 32, 33, 40])
    ) {
        let (x, o, kernel, stride, padding, dilation, groups, ..) = case.clone();
        let out = conv_out(&x, &kernel, &stride, &padding, &dilation);
        prop_assume!(out.iter().all(|&e| e > 0));
        prop_assume!(takes_gemm_path(&x, o, &kernel, groups, &out));
        let c = conv_case(case);
        check_tiers(&c)?;
        prop_assert_eq!(run_threaded(&c, 1), run_threaded(&c, 3));
    }

    /// Direct convolutions (few output channels per group; on the native tier
    /// the AVX2 row kernel takes their unit-stride interior columns, with
    /// channel blocks of up to 12) against the interpreter on both tiers,
    /// normal and checked.
    #[test]
    fn direct_conv_matches_interpreter_on_both_tiers(
        case in arb_conv(vec![1, 2, 3, 5, 6, 8, 12, 16, 24])
    ) {
        let (x, _, kernel, stride, padding, dilation, ..) = case.clone();
        let out = conv_out(&x, &kernel, &stride, &padding, &dilation);
        prop_assume!(out.iter().all(|&e| e > 0));
        check_tiers(&conv_case(case))?;
    }
}

/// Hand-picked implicit-GEMM geometries: the W2a and W2c shapes scaled down,
/// grouped with a partial last column panel, batch 3 with bias, 1-D, and the
/// packing's vector paths (whole kernel rows, wide kernels, stride 2).
#[test]
fn gemm_conv_cases() {
    conv(&[1, 16, 13, 13], 32, 1, false, &[(3, 1, (1, 1), 1); 2]);
    conv(&[1, 3, 29, 31], 33, 1, true, &[(7, 2, (3, 3), 1); 2]);
    conv(
        &[3, 6, 7, 9],
        64,
        2,
        true,
        &[(3, 1, (2, 0), 2), (3, 2, (0, 1), 1)],
    );
    conv(&[2, 8, 100], 40, 1, true, &[(5, 1, (2, 2), 1)]);
    // Whole kernel rows copied as vectors next to dilated, padded taps.
    conv(
        &[1, 5, 9, 40],
        32,
        1,
        true,
        &[(3, 1, (1, 1), 2), (5, 1, (2, 2), 2)],
    );
    // Kernel rows wider than the unrolled copy (tap by tap).
    conv(&[1, 2, 60], 32, 1, false, &[(17, 1, (8, 8), 1)]);
    // Stride 2 (shuffled vector copies) with a partial last column panel.
    conv(&[2, 3, 11, 37], 32, 1, false, &[(3, 2, (1, 1), 1); 2]);
    conv(&[1, 2, 13, 13], 32, 1, false, &[(13, 1, (6, 6), 1); 2]);
}

/// Geometries of the native direct kernel on both tiers: LeNet-5's two
/// convolutions, rows of 8·k ± 1 interior columns around padding and
/// dilation, channel blocks of 8 and 12, groups, and stride-1 transposed
/// convolutions (whose taps walk the input backwards).
#[test]
fn native_direct_conv_cases() {
    let conv_tiers = |x: &[usize], o: usize, groups: usize, bias: bool, axes: &[Axis]| {
        let case = (
            x.to_vec(),
            o,
            axes.iter().map(|a| a.0).collect(),
            axes.iter().map(|a| a.1).collect(),
            axes.iter().map(|a| a.2).collect(),
            axes.iter().map(|a| a.3).collect(),
            groups,
            bias,
            5,
        );
        check_tiers(&conv_case(case)).unwrap();
    };
    conv_tiers(&[3, 1, 28, 28], 6, 1, true, &[(5, 1, (0, 0), 1); 2]);
    conv_tiers(&[2, 6, 12, 12], 16, 1, true, &[(5, 1, (0, 0), 1); 2]);
    conv_tiers(
        &[1, 3, 9, 25],
        12,
        1,
        false,
        &[(3, 1, (1, 1), 1), (3, 1, (2, 0), 2)],
    );
    conv_tiers(
        &[1, 4, 5, 41],
        16,
        2,
        true,
        &[(2, 1, (1, 0), 1), (5, 1, (3, 3), 1)],
    );
    conv_tiers(&[2, 5, 60], 10, 1, true, &[(7, 1, (0, 5), 3)]);
    conv_tiers(
        &[1, 2, 6, 33],
        5,
        1,
        true,
        &[(3, 2, (1, 1), 1), (3, 1, (1, 1), 1)],
    );
    for (x, per_group, groups) in [([1, 4, 7, 20], 6, 2), ([2, 3, 5, 17], 8, 1)] {
        let w = [x[1], per_group, 3, 4];
        let b = [per_group * groups];
        let attrs = ConvTransposeAttrs {
            stride: vec![1, 1],
            padding: vec![(1, 0), (2, 1)],
            output_padding: vec![0, 0],
            dilation: vec![1, 2],
            groups,
        };
        check_tiers(&case(Op::ConvTranspose(attrs), &x, &[&w, &b], 3)).unwrap();
    }
}

/// The native kernel's tiles of several output rows: every block size's tile
/// (1–6 and 8 channels) over rows with leftover vectors and columns, heights
/// that are no multiple of the tile's rows, padded rows (their kernel rows
/// differ, so they run one per call) and, with one image, rows split into
/// runs for the threads; both tiers, normal and checked.
#[test]
fn native_direct_conv_row_tiles() {
    for o in [1, 2, 3, 4, 5, 6, 8] {
        for (x, axes) in [
            ([1, 2, 10, 29], [(3, 1, (1, 1), 1), (3, 1, (0, 0), 1)]),
            ([2, 3, 9, 12], [(2, 1, (0, 0), 1), (2, 1, (0, 0), 1)]),
        ] {
            let case = (
                x.to_vec(),
                o,
                axes.iter().map(|a| a.0).collect(),
                axes.iter().map(|a| a.1).collect(),
                axes.iter().map(|a| a.2).collect(),
                axes.iter().map(|a| a.3).collect(),
                1,
                o % 2 == 0,
                o as u64,
            );
            check_tiers(&conv_case(case)).unwrap();
        }
    }
}

/// One fused-pooling case: `conv(x) [→ relu] → max_pool(pool, stride)` with
/// the convolution's `conv_stride` and `padding`, and whether the conv result
/// (or its ReLU) also feeds a second output.
struct PoolCase {
    x: [usize; 4],
    o: usize,
    conv_stride: [usize; 2],
    padding: [(usize, usize); 2],
    relu: bool,
    pool: (usize, usize, usize, PoolKind),
    shared: bool,
}

/// The graph of a [`PoolCase`] (3×3 kernel with bias).
fn pool_case_graph(c: &PoolCase) -> Case {
    let mut g = Graph::new("conv_pool");
    let xv = g
        .add_source(Op::Input, "x", TensorType::f32(c.x.to_vec()), None)
        .unwrap();
    let p = |g: &mut Graph, name: &str, shape: Vec<usize>| {
        let init = Init::Uniform { lo: -1.0, hi: 1.0 };
        let ty = TensorType::f32(shape);
        g.add_source(Op::Param { init }, name, ty, None).unwrap()
    };
    let w = p(&mut g, "w", vec![c.o, c.x[1], 3, 3]);
    let b = p(&mut g, "b", vec![c.o]);
    let attrs = ConvAttrs {
        stride: c.conv_stride.to_vec(),
        padding: c.padding.to_vec(),
        dilation: vec![1, 1],
        groups: 1,
    };
    let mut v = ValueId::first(g.add_anon(Op::Conv(attrs), &[xv, w, b]).unwrap());
    if c.relu {
        v = ValueId::first(g.add_anon(Op::Unary(UnaryOp::Relu), &[v]).unwrap());
    }
    let (k, stride, pad, kind) = c.pool;
    let pool = PoolAttrs {
        kind,
        kernel: vec![k, k],
        stride: vec![stride, stride],
        padding: vec![(pad, pad); 2],
    };
    let y = g.add_anon(Op::Pool(pool), &[v]).unwrap();
    g.add_output("y", ValueId::first(y));
    if c.shared {
        let e = g.add_anon(Op::Unary(UnaryOp::Exp), &[v]).unwrap();
        g.add_output("e", ValueId::first(e));
    }
    let (inputs, params) = random_values(&g, 23);
    Case {
        seed: 23,
        ops: 3,
        graph: g,
        inputs,
        params,
    }
}

/// A max pooling (square windows at their own stride, no padding) that is the
/// only user of a direct convolution (or of its absorbed ReLU) runs in the
/// convolution's kernel, which pools its rows from the scratch: odd conv
/// outputs (the last row/column dropped), padding, conv strides (the f32x4
/// path), windows of 2 and 3, with and without ReLU, one and two images, on
/// both tiers, normal and checked. Not fused (a separate pool kernel, same
/// results): a pooling with padding, with a stride other than its window, an
/// average pooling, a conv result with a second user, and a block output
/// beyond the scratch limit.
#[test]
fn max_pool_after_conv_runs_in_the_conv_kernel() {
    let max = PoolKind::Max;
    let base = PoolCase {
        x: [2, 1, 12, 20],
        o: 6,
        conv_stride: [1, 1],
        padding: [(1, 1), (0, 1)],
        relu: true,
        pool: (2, 2, 0, max),
        shared: false,
    };
    let fused = [
        PoolCase { ..base },
        PoolCase {
            x: [1, 6, 12, 12],
            o: 12,
            padding: [(0, 0); 2],
            ..base
        },
        PoolCase {
            x: [2, 3, 13, 17],
            o: 4,
            relu: false,
            pool: (3, 3, 0, max),
            ..base
        },
        PoolCase {
            x: [1, 2, 15, 21],
            o: 5,
            conv_stride: [2, 2],
            padding: [(1, 0), (1, 1)],
            ..base
        },
        PoolCase {
            x: [1, 3, 11, 40],
            o: 8,
            conv_stride: [1, 2],
            ..base
        },
    ];
    let separate = [
        PoolCase {
            pool: (2, 2, 1, max),
            ..base
        },
        PoolCase {
            pool: (2, 1, 0, max),
            ..base
        },
        PoolCase {
            pool: (
                2,
                2,
                0,
                PoolKind::Avg {
                    count_include_pad: true,
                },
            ),
            ..base
        },
        PoolCase {
            shared: true,
            ..base
        },
        PoolCase {
            x: [1, 1, 70, 70],
            o: 2,
            ..base
        },
    ];
    for (cases, want_fused) in [(&fused, true), (&separate, false)] {
        for c in cases.iter() {
            let case = pool_case_graph(c);
            for portable in [false, true] {
                let mut opts = RuntimeOptions::default();
                opts.codegen.portable = portable;
                let model = CompiledModel::new(&case.graph, &case.params, &opts).unwrap();
                let kernels = &model.program().lowered.kernels;
                let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
                let pooled = !names.iter().any(|n| n.ends_with("_pool"));
                let (x, o, pool) = (c.x, c.o, c.pool);
                assert_eq!(pooled, want_fused, "x {x:?} o {o} {pool:?}: {names:?}");
            }
            check_tiers(&case).unwrap();
        }
    }
}

/// A ReLU that is a convolution's only user is applied at the convolution's
/// store (no kernel of its own): LeNet's conv → relu → pool on the direct
/// native, direct f32x4 and implicit-GEMM paths, on both tiers, normal and
/// checked; and where it cannot be (the convolution is also an output).
#[test]
fn relu_after_conv_runs_in_the_conv_kernel() {
    for (x, o) in [
        ([2, 1, 12, 20], 6),
        ([1, 6, 12, 12], 16),
        ([1, 8, 9, 9], 40),
    ] {
        for conv_is_output in [false, true] {
            let mut g = Graph::new("conv_relu");
            let xv = g
                .add_source(Op::Input, "x", TensorType::f32(x.to_vec()), None)
                .unwrap();
            let p = |g: &mut Graph, name: &str, shape: Vec<usize>| {
                let init = Init::Uniform { lo: -1.0, hi: 1.0 };
                let ty = TensorType::f32(shape);
                g.add_source(Op::Param { init }, name, ty, None).unwrap()
            };
            let w = p(&mut g, "w", vec![o, x[1], 3, 3]);
            let b = p(&mut g, "b", vec![o]);
            let attrs = ConvAttrs {
                stride: vec![1, 1],
                padding: vec![(1, 1), (0, 1)],
                dilation: vec![1, 1],
                groups: 1,
            };
            let c = ValueId::first(g.add_anon(Op::Conv(attrs), &[xv, w, b]).unwrap());
            let r = ValueId::first(g.add_anon(Op::Unary(UnaryOp::Relu), &[c]).unwrap());
            let pool = PoolAttrs {
                kind: PoolKind::Max,
                kernel: vec![2, 2],
                stride: vec![2, 2],
                padding: vec![(0, 0), (0, 0)],
            };
            let y = g.add_anon(Op::Pool(pool), &[r]).unwrap();
            g.add_output("y", ValueId::first(y));
            if conv_is_output {
                g.add_output("c", c);
            }
            let (inputs, params) = random_values(&g, 17);
            let case = Case {
                seed: 17,
                ops: 3,
                graph: g,
                inputs,
                params,
            };
            check_tiers(&case).unwrap();
        }
    }
}
