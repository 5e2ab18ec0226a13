use dlc_ir::{CellKind, Op};

use super::*;

fn cell(cell: CellKind) -> Op {
    Op::Recurrent {
        cell,
        sequence: false,
    }
}

fn seq(cell: CellKind) -> Op {
    Op::Recurrent {
        cell,
        sequence: true,
    }
}

#[test]
fn rnn_cell_by_hand() {
    // h' = tanh(0.5 x + 0.1 + 0.25 h - 0.2)
    let args = [
        fv::<f64>(&[2, 1], &[1.0, -2.0]),
        fv(&[2, 1], &[0.5, 1.0]),
        fv(&[1, 1], &[0.5]),
        fv(&[1, 1], &[0.25]),
        fv(&[1], &[0.1]),
        fv(&[1], &[-0.2]),
    ];
    let h = run1(cell(CellKind::Rnn), &args);
    check(
        &h,
        &[2, 1],
        &[
            (0.5f64 + 0.1 + 0.125 - 0.2).tanh(),
            (-1.0f64 + 0.1 + 0.25 - 0.2).tanh(),
        ],
    );
}

#[test]
fn lstm_and_gru_cells_with_bias_only_weights() {
    // Zero weights leave only the biases: each gate is a constant we can compute.
    let (b, h) = (2, 3);
    let x = noise::<f64>(&[b, 4], 1);
    let h0 = noise::<f64>(&[b, h], 2);
    let c0 = noise::<f64>(&[b, h], 3);
    let zeros = |r, c| fv::<f64>(&[r, c], &vec![0.0; r * c]);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    // LSTM bias blocks i, f, g, o = 1, 2, 3, 4 (split between b_ih and b_hh).
    let b_ih: Vec<f64> = (0..4 * h).map(|k| (k / h + 1) as f64 / 2.0).collect();
    let outs = run_op(
        cell(CellKind::Lstm),
        &[
            x.clone(),
            h0.clone(),
            c0.clone(),
            zeros(4 * h, 4),
            zeros(4 * h, h),
            fv(&[4 * h], &b_ih),
            fv(&[4 * h], &b_ih),
        ],
    )
    .unwrap();
    let c1: Vec<f64> = floats(&c0)
        .iter()
        .map(|c| sig(2.0) * c + sig(1.0) * 3f64.tanh())
        .collect();
    let h1: Vec<f64> = c1.iter().map(|c| sig(4.0) * c.tanh()).collect();
    check(&outs[0], &[b, h], &h1);
    check(&outs[1], &[b, h], &c1);
    // GRU: r = σ(1), z = σ(2), n = tanh(b_in + r * b_hn) with b_in = 0.3, b_hn = 0.5.
    let b_ih: Vec<f64> = [0.5, 1.0, 0.3].iter().flat_map(|&v| vec![v; h]).collect();
    let b_hh: Vec<f64> = [0.5, 1.0, 0.5].iter().flat_map(|&v| vec![v; h]).collect();
    let got = run1(
        cell(CellKind::Gru),
        &[
            x,
            h0.clone(),
            zeros(3 * h, 4),
            zeros(3 * h, h),
            fv(&[3 * h], &b_ih),
            fv(&[3 * h], &b_hh),
        ],
    );
    let n = (0.3 + sig(1.0) * 0.5).tanh();
    let want: Vec<f64> = floats(&h0)
        .iter()
        .map(|h| (1.0 - sig(2.0)) * n + sig(2.0) * h)
        .collect();
    check(&got, &[b, h], &want);
}

#[test]
fn sequences_equal_repeated_cell_steps() {
    let (t, b, i, h) = (4, 2, 3, 5);
    for kind in [CellKind::Rnn, CellKind::Lstm, CellKind::Gru] {
        let g = kind.gates() * h;
        let x = noise::<f64>(&[t, b, i], 7);
        let mut state = vec![noise::<f64>(&[b, h], 8)];
        if kind.has_cell_state() {
            state.push(noise::<f64>(&[b, h], 9));
        }
        let weights = [
            noise::<f64>(&[g, i], 10),
            noise(&[g, h], 11),
            noise(&[g], 12),
            noise(&[g], 13),
        ];
        let args: Vec<Value<f64>> = [vec![x.clone()], state.clone(), weights.to_vec()].concat();
        let outs = run_op(seq(kind), &args).unwrap();
        let xs = floats(&x);
        let mut ys = Vec::new();
        for step in 0..t {
            let xt = fv(&[b, i], &xs[step * b * i..(step + 1) * b * i]);
            let args: Vec<Value<f64>> = [vec![xt], state.clone(), weights.to_vec()].concat();
            state = run_op(cell(kind), &args).unwrap();
            ys.extend(floats(&state[0]));
        }
        check(&outs[0], &[t, b, h], &ys);
        for (got, want) in outs[1..].iter().zip(&state) {
            check(got, &[b, h], &floats(want));
        }
    }
}

#[test]
fn grid_lstm_borders_and_final_states() {
    let (gh, gw, b, f, h) = (2, 3, 2, 3, 4);
    let args = [
        noise::<f64>(&[gh, gw, b, f], 1),
        noise(&[f + 2 * h, 4 * h], 2),
        noise(&[4 * h], 3),
        noise(&[f + 2 * h, 4 * h], 4),
        noise(&[4 * h], 5),
    ];
    let outs = run_op(Op::GridLstm, &args).unwrap();
    let y = floats(&outs[0]);
    let y_at = |i: usize, j: usize, dir: usize| -> Vec<f64> {
        (0..b)
            .flat_map(|bb| {
                let base = ((i * gw + j) * b + bb) * 2 * h + dir * h;
                y[base..base + h].to_vec()
            })
            .collect()
    };
    // h_vert[j] is direction 1 of the last row; h_hor[i] direction 2 of the last column.
    let h_vert = floats(&outs[1]);
    for j in 0..gw {
        close(
            &h_vert[j * b * h..(j + 1) * b * h],
            &y_at(gh - 1, j, 0),
            0.0,
        );
    }
    let h_hor = floats(&outs[3]);
    for i in 0..gh {
        close(&h_hor[i * b * h..(i + 1) * b * h], &y_at(i, gw - 1, 1), 0.0);
    }
    // Cell (0, 0) sees zero states: z = [x, 0, 0], m' = σ(f)·0 + σ(i)·tanh(g).
    let (xs, w1, b1) = (floats(&args[0]), floats(&args[1]), floats(&args[2]));
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let mut want = Vec::new();
    for bb in 0..b {
        let gate = |k: usize| -> f64 {
            b1[k]
                + (0..f)
                    .map(|p| xs[bb * f + p] * w1[p * 4 * h + k])
                    .sum::<f64>()
        };
        for u in 0..h {
            let m = sig(gate(u)) * gate(2 * h + u).tanh();
            want.push(sig(gate(3 * h + u)) * m.tanh());
        }
    }
    close(&y_at(0, 0, 0), &want, 1e-14);
    assert_eq!(outs[2].shape(), &[gw, b, h]);
    assert_eq!(outs[4].shape(), &[gh, b, h]);
}
