//! Recurrent layers (tanh RNN, LSTM, GRU) over a sequence or one step, and the
//! 2-D grid LSTM.
//!
//! Weights use PyTorch's layout (`w_ih [G*H, I]`, `W x` = `x @ W^T`) and gate
//! orders (LSTM i, f, g, o; GRU r, z, n with `r` multiplying `W_hn h + b_hn`).
//! States are `[B, H]`.

use dlc_ir::CellKind;
use dlc_tensor::Value;
use ndarray::{Array2, ArrayView2, Axis, Ix2, s};

use crate::array::{OpResult, float, from_vec};
use crate::float::{Float, sigmoid};
use crate::linalg::{as1, as2, linear, mm};

/// The weights of one recurrent layer.
struct Weights<'a, F> {
    w_ih: ArrayView2<'a, F>,
    w_hh: ArrayView2<'a, F>,
    b_ih: ndarray::ArrayView1<'a, F>,
    b_hh: ndarray::ArrayView1<'a, F>,
}

/// Gate block `k` (columns `k*H..(k+1)*H`) of stacked gate pre-activations.
fn block<F: Float>(g: &Array2<F>, k: usize, h: usize) -> ArrayView2<'_, F> {
    g.slice(s![.., k * h..(k + 1) * h])
}

/// One step of a cell: returns `(h', c')` (`c'` only for the LSTM).
fn step<F: Float>(
    cell: CellKind,
    w: &Weights<'_, F>,
    x: ArrayView2<'_, F>,
    h: &Array2<F>,
    c: Option<&Array2<F>>,
) -> (Array2<F>, Option<Array2<F>>) {
    let hid = h.ncols();
    let gi = linear(x, w.w_ih, w.b_ih);
    let gh = linear(h.view(), w.w_hh, w.b_hh);
    match cell {
        CellKind::Rnn => ((gi + gh).mapv(F::tanh), None),
        CellKind::Lstm => {
            let g = gi + gh;
            let i = block(&g, 0, hid).mapv(sigmoid);
            let f = block(&g, 1, hid).mapv(sigmoid);
            let gg = block(&g, 2, hid).mapv(F::tanh);
            let o = block(&g, 3, hid).mapv(sigmoid);
            let zeros = Array2::zeros(h.raw_dim());
            let c_new = f * c.unwrap_or(&zeros) + i * gg;
            let h_new = o * c_new.mapv(F::tanh);
            (h_new, Some(c_new))
        }
        CellKind::Gru => {
            let r = (&block(&gi, 0, hid) + &block(&gh, 0, hid)).mapv(sigmoid);
            let z = (&block(&gi, 1, hid) + &block(&gh, 1, hid)).mapv(sigmoid);
            let n = (&block(&gi, 2, hid) + &(r * block(&gh, 2, hid))).mapv(F::tanh);
            let h_new = z.mapv(|z| F::one() - z) * n + z * h;
            (h_new, None)
        }
    }
}

/// An `[a, b]` operand as an owned matrix.
fn owned2<F: Float>(v: &Value<F>) -> Result<Array2<F>, String> {
    float(v)?
        .clone()
        .into_dimensionality::<Ix2>()
        .map_err(|_| format!("expected a matrix, got {}", v.ty()))
}

/// Operands `x, h0, [c0,] w_ih, w_hh, b_ih, b_hh`.
///
/// Sequence form: `x [T, B, I]` → `y [T, B, H], h_n[, c_n]`; cell form:
/// `x [B, I]` → `h1[, c1]`.
pub(crate) fn recurrent<F: Float>(
    cell: CellKind,
    sequence: bool,
    args: &[&Value<F>],
) -> OpResult<F> {
    let states = 1 + cell.has_cell_state() as usize;
    if args.len() != 5 + states {
        return Err(format!("takes {} operands, got {}", 5 + states, args.len()));
    }
    let mut h = owned2(args[1])?;
    let mut c = if states == 2 {
        Some(owned2(args[2])?)
    } else {
        None
    };
    let wa = &args[1 + states..];
    let w = Weights {
        w_ih: as2(float(wa[0])?)?,
        w_hh: as2(float(wa[1])?)?,
        b_ih: as1(float(wa[2])?)?,
        b_hh: as1(float(wa[3])?)?,
    };
    let x = float(args[0])?;
    let mut results = Vec::new();
    if sequence {
        if x.ndim() != 3 {
            return Err("the sequence form needs x [T, B, I]".into());
        }
        let mut ys = Vec::new();
        for xt in x.outer_iter() {
            let xt = xt.into_dimensionality::<Ix2>().map_err(|e| e.to_string())?;
            (h, c) = step(cell, &w, xt, &h, c.as_ref());
            ys.extend(h.iter().copied());
        }
        let shape = [x.shape()[0], h.nrows(), h.ncols()];
        results.push(Value::Float(from_vec(&shape, ys)?));
    } else {
        (h, c) = step(cell, &w, as2(x)?, &h, c.as_ref());
    }
    results.push(Value::Float(h.into_dyn()));
    results.extend(c.map(|c| Value::Float(c.into_dyn())));
    Ok(results)
}

/// One grid-LSTM direction: gates `z @ w + b` split i, f, g, o;
/// `m' = σ(f)·m + σ(i)·tanh(g)`, `h' = σ(o)·tanh(m')`.
fn grid_direction<F: Float>(
    z: &Array2<F>,
    w: ArrayView2<'_, F>,
    b: ndarray::ArrayView1<'_, F>,
    m: &Array2<F>,
) -> (Array2<F>, Array2<F>) {
    let hid = m.ncols();
    let g = mm(z.view(), w) + b;
    let i = block(&g, 0, hid).mapv(sigmoid);
    let f = block(&g, 1, hid).mapv(sigmoid);
    let gg = block(&g, 2, hid).mapv(F::tanh);
    let o = block(&g, 3, hid).mapv(sigmoid);
    let m_new = f * m + i * gg;
    let h_new = o * m_new.mapv(F::tanh);
    (h_new, m_new)
}

/// 2-D grid LSTM; operands `x [Hg, Wg, B, F], w1 [F+2H, 4H], b1, w2, b2`.
///
/// Cell `(i, j)` reads direction-1 state `(h1, m1)` from `(i-1, j)` and direction-2
/// state `(h2, m2)` from `(i, j-1)` (zeros at the borders); `z = [x_ij, h1, h2]`.
/// Results: `y [Hg, Wg, B, 2H]` (`[h1', h2']`), `h_vert, m_vert [Wg, B, H]` (last
/// row's direction-1 states), `h_hor, m_hor [Hg, B, H]` (last column's direction 2).
pub(crate) fn grid_lstm<F: Float>(args: &[&Value<F>]) -> OpResult<F> {
    let x = float(args[0])?;
    let (w1, b1) = (as2(float(args[1])?)?, as1(float(args[2])?)?);
    let (w2, b2) = (as2(float(args[3])?)?, as1(float(args[4])?)?);
    if x.ndim() != 4 {
        return Err("needs x [H, W, B, F]".into());
    }
    let [gh, gw, batch, _] = [0, 1, 2, 3].map(|d| x.shape()[d]);
    let hid = b1.len() / 4;
    let zeros = Array2::<F>::zeros((batch, hid));
    // dir1[j]: the direction-1 state (h, m) leaving the cell above, per column.
    let mut dir1 = vec![(zeros.clone(), zeros.clone()); gw];
    let (mut y, mut h_hor, mut m_hor) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..gh {
        // The direction-2 state leaving the cell to the left.
        let mut dir2 = (zeros.clone(), zeros.clone());
        for (j, d1) in dir1.iter_mut().enumerate() {
            let xij = x.index_axis(Axis(0), i);
            let xij = xij.index_axis(Axis(0), j);
            let xij = xij
                .into_dimensionality::<Ix2>()
                .map_err(|e| e.to_string())?;
            let z = ndarray::concatenate(Axis(1), &[xij, d1.0.view(), dir2.0.view()])
                .map_err(|e| e.to_string())?;
            let new1 = grid_direction(&z, w1, b1, &d1.1);
            let new2 = grid_direction(&z, w2, b2, &dir2.1);
            for b in 0..batch {
                y.extend(new1.0.row(b).iter().chain(new2.0.row(b)).copied());
            }
            (*d1, dir2) = (new1, new2);
        }
        h_hor.extend(dir2.0.iter().copied());
        m_hor.extend(dir2.1.iter().copied());
    }
    let h_vert: Vec<F> = dir1.iter().flat_map(|s| s.0.iter().copied()).collect();
    let m_vert: Vec<F> = dir1.iter().flat_map(|s| s.1.iter().copied()).collect();
    Ok(vec![
        Value::Float(from_vec(&[gh, gw, batch, 2 * hid], y)?),
        Value::Float(from_vec(&[gw, batch, hid], h_vert)?),
        Value::Float(from_vec(&[gw, batch, hid], m_vert)?),
        Value::Float(from_vec(&[gh, batch, hid], h_hor)?),
        Value::Float(from_vec(&[gh, batch, hid], m_hor)?),
    ])
}
