//! Backpropagation through recurrent layers (through time) and the grid LSTM.
//!
//! Each op re-runs its forward pass, keeping every step's states and gate
//! activations, then walks the steps backwards. The layouts and gate orders are
//! those of [`crate::recurrent`] (PyTorch's).

use dlc_ir::CellKind;
use dlc_tensor::Value;
use ndarray::{Array2, ArrayView2, Axis, Ix2, s};

use crate::array::{OpResult, float, from_vec};
use crate::float::{Float, sigmoid};
use crate::linalg::{as1, as2, linear, mm};

/// An `[a, b]` operand as an owned matrix.
fn owned2<F: Float>(v: &Value<F>) -> Result<Array2<F>, String> {
    float(v)?
        .clone()
        .into_dimensionality::<Ix2>()
        .map_err(|_| format!("expected a matrix, got {}", v.ty()))
}

/// Gate block `k` of stacked gates `[B, G*H]`.
fn block<F: Float>(g: &Array2<F>, k: usize, h: usize) -> Array2<F> {
    g.slice(s![.., k * h..(k + 1) * h]).to_owned()
}

fn d_sigmoid<F: Float>(y: &Array2<F>) -> Array2<F> {
    y.mapv(|v| v * (F::one() - v))
}

fn d_tanh<F: Float>(y: &Array2<F>) -> Array2<F> {
    y.mapv(|v| F::one() - v * v)
}

/// What one forward step keeps for the backward pass.
struct Saved<F> {
    h: Array2<F>,
    c: Array2<F>,
    /// Gate activations `[B, G*H]` (LSTM i, f, g, o; GRU r, z, n; RNN h').
    act: Array2<F>,
    /// GRU only: `W_hn h + b_hn`.
    ghn: Array2<F>,
    /// LSTM only: the new cell state.
    c_new: Array2<F>,
}

/// One forward step; returns the new `(h, c)` and what backward needs.
fn forward<F: Float>(
    cell: CellKind,
    gx: Array2<F>,
    h: &Array2<F>,
    c: &Array2<F>,
    w_hh: ArrayView2<'_, F>,
    b_hh: ndarray::ArrayView1<'_, F>,
) -> (Array2<F>, Saved<F>) {
    let hid = h.ncols();
    let gh = linear(h.view(), w_hh, b_hh);
    let empty = Array2::zeros((0, 0));
    let (h_new, act, ghn, c_new) = match cell {
        CellKind::Rnn => {
            let y = (gx + gh).mapv(F::tanh);
            (y.clone(), y, empty.clone(), empty)
        }
        CellKind::Lstm => {
            let g = gx + gh;
            let mut act = g.clone();
            for k in 0..4 {
                let f = if k == 2 { F::tanh } else { sigmoid::<F> };
                act.slice_mut(s![.., k * hid..(k + 1) * hid])
                    .mapv_inplace(f);
            }
            let [i, f, gg, o] = [0, 1, 2, 3].map(|k| block(&act, k, hid));
            let c_new = f * c + i * gg;
            let h_new = o * c_new.mapv(F::tanh);
            (h_new, act, empty, c_new)
        }
        CellKind::Gru => {
            let r = (block(&gx, 0, hid) + block(&gh, 0, hid)).mapv(sigmoid);
            let z = (block(&gx, 1, hid) + block(&gh, 1, hid)).mapv(sigmoid);
            let ghn = block(&gh, 2, hid);
            let n = (block(&gx, 2, hid) + &r * &ghn).mapv(F::tanh);
            let h_new = z.mapv(|z| F::one() - z) * &n + &z * h;
            let act = ndarray::concatenate![Axis(1), r, z, n];
            (h_new, act, ghn, empty)
        }
    };
    let saved = Saved {
        h: h.clone(),
        c: c.clone(),
        act,
        ghn,
        c_new,
    };
    (h_new, saved)
}

/// One backward step: from the gradients of the new `(h, c)`, the gradients of the
/// input-side and hidden-side pre-activations and of the old `c` (the old `h`'s
/// gradient is `dgh W_hh` plus, for the GRU, the direct `z`-path returned here).
fn backward<F: Float>(
    cell: CellKind,
    sv: &Saved<F>,
    dh: &Array2<F>,
    dc: &Array2<F>,
) -> (Array2<F>, Array2<F>, Array2<F>, Array2<F>) {
    let hid = dh.ncols();
    let zeros = Array2::zeros(dh.raw_dim());
    match cell {
        CellKind::Rnn => {
            let da = dh * &d_tanh(&sv.act);
            (da.clone(), da, zeros.clone(), zeros)
        }
        CellKind::Lstm => {
            let [i, f, g, o] = [0, 1, 2, 3].map(|k| block(&sv.act, k, hid));
            let tc = sv.c_new.mapv(F::tanh);
            let d_o = dh * &tc;
            let dcn = dc + &(dh * &o * d_tanh(&tc));
            let di = &dcn * &g * d_sigmoid(&i);
            let df = &dcn * &sv.c * d_sigmoid(&f);
            let dg = &dcn * &i * d_tanh(&g);
            let dop = d_o * d_sigmoid(&o);
            let d = ndarray::concatenate![Axis(1), di, df, dg, dop];
            (d.clone(), d, dcn * f, zeros)
        }
        CellKind::Gru => {
            let [r, z, n] = [0, 1, 2].map(|k| block(&sv.act, k, hid));
            let dn = dh * &z.mapv(|z| F::one() - z) * d_tanh(&n);
            let dz = dh * &(&sv.h - &n) * d_sigmoid(&z);
            let dr = &dn * &sv.ghn * d_sigmoid(&r);
            let dgi = ndarray::concatenate![Axis(1), dr, dz, dn];
            let dgh = ndarray::concatenate![Axis(1), dr, dz, &dn * &r];
            (dgi, dgh, zeros, dh * &z)
        }
    }
}

/// Operands `x, h0, [c0,] w_ih, w_hh, b_ih, b_hh, [dy,] dh_n, [dc_n]`; results the
/// gradients of `x, h0, [c0,] w_ih, w_hh, b_ih, b_hh`.
pub(crate) fn recurrent_grad<F: Float>(
    cell: CellKind,
    sequence: bool,
    args: &[&Value<F>],
) -> OpResult<F> {
    let states = 1 + cell.has_cell_state() as usize;
    let fwd = 5 + states;
    if args.len() != fwd + states + sequence as usize {
        return Err(format!("wrong operand count {}", args.len()));
    }
    let x = float(args[0])?;
    let h0 = owned2(args[1])?;
    let c0 = if states == 2 {
        owned2(args[2])?
    } else {
        Array2::zeros(h0.raw_dim())
    };
    let wa = &args[1 + states..fwd];
    let (w_ih, w_hh) = (as2(float(wa[0])?)?, as2(float(wa[1])?)?);
    let (b_ih, b_hh) = (as1(float(wa[2])?)?, as1(float(wa[3])?)?);
    let grads = &args[fwd..];
    let xs: Vec<Array2<F>> = if sequence {
        x.outer_iter()
            .map(|t| t.into_dimensionality::<Ix2>().map(|m| m.to_owned()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?
    } else {
        vec![owned2(args[0])?]
    };
    let steps = xs.len();
    let dys: Option<&ndarray::ArrayD<F>> = if sequence {
        Some(float(grads[0])?)
    } else {
        None
    };
    let mut dh = owned2(grads[sequence as usize])?;
    let mut dc = if states == 2 {
        owned2(grads[1 + sequence as usize])?
    } else {
        Array2::zeros(h0.raw_dim())
    };
    // Forward, keeping every step.
    let (mut h, mut c) = (h0.clone(), c0);
    let mut saved = Vec::with_capacity(steps);
    for xt in &xs {
        let gx = linear(xt.view(), w_ih, b_ih);
        let (h_new, sv) = forward(cell, gx, &h, &c, w_hh, b_hh);
        c = if cell == CellKind::Lstm {
            sv.c_new.clone()
        } else {
            c
        };
        h = h_new;
        saved.push(sv);
    }
    // Backward through time.
    let mut dx = vec![Array2::<F>::zeros((0, 0)); steps];
    let mut dw_ih = Array2::<F>::zeros(w_ih.raw_dim());
    let mut dw_hh = Array2::<F>::zeros(w_hh.raw_dim());
    let mut db_ih = ndarray::Array1::<F>::zeros(b_ih.raw_dim());
    let mut db_hh = ndarray::Array1::<F>::zeros(b_hh.raw_dim());
    for t in (0..steps).rev() {
        if let Some(dys) = dys {
            let dyt = dys.index_axis(Axis(0), t);
            dh += &dyt
                .into_dimensionality::<Ix2>()
                .map_err(|e| e.to_string())?;
        }
        let sv = &saved[t];
        let (dgi, dgh, dc_prev, dh_direct) = backward(cell, sv, &dh, &dc);
        dw_ih += &mm(dgi.t(), xs[t].view());
        dw_hh += &mm(dgh.t(), sv.h.view());
        db_ih += &dgi.sum_axis(Axis(0));
        db_hh += &dgh.sum_axis(Axis(0));
        dx[t] = mm(dgi.view(), w_ih);
        dh = mm(dgh.view(), w_hh) + dh_direct;
        dc = dc_prev;
    }
    let dx_data: Vec<F> = dx.iter().flat_map(|m| m.iter().copied()).collect();
    let mut out = vec![
        Value::Float(from_vec(x.shape(), dx_data)?),
        Value::Float(dh.into_dyn()),
    ];
    if states == 2 {
        out.push(Value::Float(dc.into_dyn()));
    }
    out.extend([
        Value::Float(dw_ih.into_dyn()),
        Value::Float(dw_hh.into_dyn()),
        Value::Float(db_ih.into_dyn()),
        Value::Float(db_hh.into_dyn()),
    ]);
    Ok(out)
}

/// What one grid-LSTM direction of one cell keeps: gate activations and the old
/// and new memory.
struct GridSaved<F> {
    act: Array2<F>,
    m: Array2<F>,
    m_new: Array2<F>,
}

fn grid_forward<F: Float>(
    z: &Array2<F>,
    w: ArrayView2<'_, F>,
    b: ndarray::ArrayView1<'_, F>,
    m: &Array2<F>,
) -> (Array2<F>, GridSaved<F>) {
    let hid = m.ncols();
    let mut act = mm(z.view(), w) + b;
    for k in 0..4 {
        let f = if k == 2 { F::tanh } else { sigmoid::<F> };
        act.slice_mut(s![.., k * hid..(k + 1) * hid])
            .mapv_inplace(f);
    }
    let [i, f, g, o] = [0, 1, 2, 3].map(|k| block(&act, k, hid));
    let m_new = f * m + i * g;
    let h_new = o * m_new.mapv(F::tanh);
    let saved = GridSaved {
        act,
        m: m.clone(),
        m_new,
    };
    (h_new, saved)
}

/// Gradients of one direction's gate pre-activations and of its old memory.
fn grid_backward<F: Float>(
    sv: &GridSaved<F>,
    dh: &Array2<F>,
    dm: &Array2<F>,
) -> (Array2<F>, Array2<F>) {
    let hid = dh.ncols();
    let [i, f, g, o] = [0, 1, 2, 3].map(|k| block(&sv.act, k, hid));
    let tm = sv.m_new.mapv(F::tanh);
    let dmn = dm + &(dh * &o * d_tanh(&tm));
    let di = &dmn * &g * d_sigmoid(&i);
    let df = &dmn * &sv.m * d_sigmoid(&f);
    let dg = &dmn * &i * d_tanh(&g);
    let dop = dh * &tm * d_sigmoid(&o);
    (ndarray::concatenate![Axis(1), di, df, dg, dop], dmn * f)
}

/// Operands `x, w1, b1, w2, b2, dy, dh_vert, dm_vert, dh_hor, dm_hor`; results the
/// gradients of `x, w1, b1, w2, b2`. Cells are revisited in reverse row-major
/// order; direction 1 flows down the columns, direction 2 along the rows.
pub(crate) fn grid_lstm_grad<F: Float>(args: &[&Value<F>]) -> OpResult<F> {
    let x = float(args[0])?;
    let ws = [as2(float(args[1])?)?, as2(float(args[3])?)?];
    let bs = [as1(float(args[2])?)?, as1(float(args[4])?)?];
    let dy = float(args[5])?;
    let [dhv, dmv, dhh, dmh] = [6, 7, 8, 9].map(|i| float(args[i]));
    let (dhv, dmv, dhh, dmh) = (dhv?, dmv?, dhh?, dmh?);
    if x.ndim() != 4 {
        return Err("needs x [H, W, B, F]".into());
    }
    let [gh, gw, batch, feat] = [0, 1, 2, 3].map(|d| x.shape()[d]);
    let hid = bs[0].len() / 4;
    let zeros = Array2::<F>::zeros((batch, hid));
    let cell_x = |i: usize, j: usize| -> Array2<F> { x.slice(s![i, j, .., ..]).to_owned() };
    // Forward sweep, keeping z and both directions' saved values per cell.
    let mut dir1 = vec![(zeros.clone(), zeros.clone()); gw];
    let mut saved: Vec<(Array2<F>, [GridSaved<F>; 2])> = Vec::with_capacity(gh * gw);
    for i in 0..gh {
        let mut dir2 = (zeros.clone(), zeros.clone());
        for (j, d1) in dir1.iter_mut().enumerate() {
            let z = ndarray::concatenate![Axis(1), cell_x(i, j), d1.0, dir2.0];
            let (h1, s1) = grid_forward(&z, ws[0], bs[0], &d1.1);
            let (h2, s2) = grid_forward(&z, ws[1], bs[1], &dir2.1);
            *d1 = (h1, s1.m_new.clone());
            dir2 = (h2, s2.m_new.clone());
            saved.push((z, [s1, s2]));
        }
    }
    // Backward sweep.
    let at2 = |a: &ndarray::ArrayD<F>, i: usize| -> Array2<F> {
        a.index_axis(Axis(0), i)
            .into_dimensionality::<Ix2>()
            .map(|m| m.to_owned())
            .unwrap_or_else(|_| zeros.clone())
    };
    let mut g1: Vec<(Array2<F>, Array2<F>)> = (0..gw).map(|j| (at2(dhv, j), at2(dmv, j))).collect();
    let mut dws = [
        Array2::<F>::zeros(ws[0].raw_dim()),
        Array2::zeros(ws[1].raw_dim()),
    ];
    let mut dbs = [
        ndarray::Array1::<F>::zeros(bs[0].raw_dim()),
        ndarray::Array1::zeros(bs[1].raw_dim()),
    ];
    let mut dx = ndarray::Array4::<F>::zeros((gh, gw, batch, feat));
    for i in (0..gh).rev() {
        let mut g2 = (at2(dhh, i), at2(dmh, i));
        for j in (0..gw).rev() {
            let (z, sv) = &saved[i * gw + j];
            let dyc = dy.slice(s![i, j, .., ..]);
            let dh1 = &g1[j].0 + &dyc.slice(s![.., ..hid]);
            let dh2 = &g2.0 + &dyc.slice(s![.., hid..]);
            let (dg1, dm1) = grid_backward(&sv[0], &dh1, &g1[j].1);
            let (dg2, dm2) = grid_backward(&sv[1], &dh2, &g2.1);
            let mut dz = mm(dg1.view(), ws[0].t());
            dz += &mm(dg2.view(), ws[1].t());
            for (d, dg) in [&dg1, &dg2].into_iter().enumerate() {
                dws[d] += &mm(z.t(), dg.view());
                dbs[d] += &dg.sum_axis(Axis(0));
            }
            dx.slice_mut(s![i, j, .., ..])
                .assign(&dz.slice(s![.., ..feat]));
            g1[j] = (dz.slice(s![.., feat..feat + hid]).to_owned(), dm1);
            g2 = (dz.slice(s![.., feat + hid..]).to_owned(), dm2);
        }
    }
    let [dw1, dw2] = dws;
    let [db1, db2] = dbs;
    let data: Vec<F> = dx.iter().copied().collect();
    Ok(vec![
        Value::Float(from_vec(x.shape(), data)?),
        Value::Float(dw1.into_dyn()),
        Value::Float(db1.into_dyn()),
        Value::Float(dw2.into_dyn()),
        Value::Float(db2.into_dyn()),
    ])
}
