use dlc_ir::{Graph, Op, TensorType, ValueId};
use dlc_tensor::{Env, ValueError};

use super::*;
use crate::{InterpError, run};

#[test]
fn gather_index_out_of_range_is_a_runtime_error() {
    for bad in [10, -1] {
        let err = run_op::<f32>(
            Op::Gather { axis: 0 },
            &[ramp(&[10, 2], 1.0, 0.0), iv(&[2], &[3, bad])],
        )
        .unwrap_err();
        match err {
            InterpError::Runtime { op, message, .. } => {
                assert_eq!(op, "gather");
                assert!(
                    message.contains(&format!("index {bad}")) && message.contains("size 10"),
                    "{message}"
                );
            }
            e => panic!("unexpected {e}"),
        }
    }
}

#[test]
fn cross_entropy_label_out_of_range_is_a_runtime_error() {
    let err = run_op::<f64>(
        Op::CrossEntropy,
        &[ramp(&[2, 3], 1.0, 0.0), iv(&[2], &[0, 3])],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("label 3 of row 1 is out of range for 3 classes"),
        "{err}"
    );
}

fn one_input_graph() -> Graph {
    let mut g = Graph::new("m");
    let x = g
        .add_source(Op::Input, "x", TensorType::f32([2]), None)
        .unwrap();
    let p = g
        .add_source(
            Op::Param {
                init: dlc_ir::Init::Zeros,
            },
            "w",
            TensorType::f32([2]),
            None,
        )
        .unwrap();
    let y = g
        .add_op(
            Op::Binary(dlc_ir::BinaryOp::Mul),
            &[x, p],
            vec!["y".into()],
            None,
        )
        .unwrap();
    g.add_output("y", ValueId::first(y));
    g
}

#[test]
fn inputs_and_params_are_checked_before_running() {
    let g = one_input_graph();
    let params: Env = [("w".to_string(), fv(&[2], &[1.0, 2.0]))].into();
    let missing = run::<f32>(&g, &Env::new(), &params).unwrap_err();
    assert!(
        matches!(missing, InterpError::Value(ValueError::Missing { .. })),
        "{missing}"
    );
    let wrong: Env = [("x".to_string(), fv(&[3], &[1.0, 2.0, 3.0]))].into();
    let err = run::<f32>(&g, &wrong, &params).unwrap_err();
    assert!(
        matches!(err, InterpError::Value(ValueError::Mismatch { .. })),
        "{err}"
    );
    let ok: Env = [("x".to_string(), fv(&[2], &[3.0, 4.0]))].into();
    let out = run::<f32>(&g, &ok, &params).unwrap();
    check(&out["y"], &[2], &[3.0, 8.0]);
    let all = crate::run_all::<f32>(&g, &ok, &params).unwrap();
    assert_eq!(all.len(), 3);
    check(&all[2][0], &[2], &[3.0, 8.0]);
}

#[test]
fn constants_are_cast_to_the_float_type() {
    let mut g = Graph::new("c");
    let value = dlc_ir::ConstValue::Float(vec![0.1, 1e300]);
    let c = g
        .add_source(Op::Const { value }, "c", TensorType::f32([2]), None)
        .unwrap();
    g.add_output("c", c);
    let f32_out = run::<f32>(&g, &Env::new(), &Env::new()).unwrap();
    assert_eq!(
        f32_out["c"].as_float().unwrap().as_slice().unwrap(),
        &[0.1f32, f32::INFINITY]
    );
    let f64_out = run::<f64>(&g, &Env::<f64>::new(), &Env::<f64>::new()).unwrap();
    assert_eq!(
        f64_out["c"].as_float().unwrap().as_slice().unwrap(),
        &[0.1f64, 1e300]
    );
}
