//! Training data: named arrays sharing an example axis, checked against a
//! model's inputs, cut into (shuffled) batches.

use std::collections::BTreeMap;

use dlc_ir::init::SplitMix64;
use dlc_ir::{DType, TensorType};
use dlc_tensor::{Env, Value};
use ndarray::{ArrayD, Axis};

use crate::Error;

/// Named arrays with the same number of examples, each along its own axis.
#[derive(Clone, Debug)]
pub struct Dataset {
    arrays: Env,
    axes: BTreeMap<String, usize>,
    len: usize,
}

/// One model input as a data set must provide it: its name, its type for one
/// batch, and the axis along which examples are stacked.
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// The input's name (the array's key).
    pub name: String,
    /// The input's type for one batch.
    pub ty: TensorType,
    /// The example axis.
    pub axis: usize,
}

impl Dataset {
    /// Takes the arrays that `inputs` name from `arrays` (other keys are
    /// ignored) and checks them: every input present, dtype as declared, every
    /// axis but the example axis as declared, the same number of examples in
    /// all of them.
    pub fn new(arrays: &Env, inputs: &[InputSpec]) -> Result<Dataset, Error> {
        let mut taken = Env::new();
        let mut axes = BTreeMap::new();
        let mut len: Option<(usize, &str)> = None;
        for spec in inputs {
            let Some(v) = arrays.get(&spec.name) else {
                let keys: Vec<&str> = arrays.keys().map(String::as_str).collect();
                return Err(Error::Data(format!(
                    "the data has no array `{}` (the model's input {}: {}); its keys are: {}",
                    spec.name,
                    spec.name,
                    spec.ty,
                    if keys.is_empty() {
                        "(none)".to_string()
                    } else {
                        keys.join(", ")
                    }
                )));
            };
            let shape = v.shape();
            let fits = v.dtype() == spec.ty.dtype
                && shape.len() == spec.ty.rank()
                && shape
                    .iter()
                    .zip(&spec.ty.shape)
                    .enumerate()
                    .all(|(i, (a, b))| i == spec.axis || a == b);
            if !fits {
                let mut want: Vec<String> = spec.ty.shape.iter().map(|d| d.to_string()).collect();
                want[spec.axis] = "N".into();
                return Err(Error::Data(format!(
                    "data array `{}` has type {}{:?}, but the model's input `{}` needs {}[{}] \
                     (N examples along axis {})",
                    spec.name,
                    v.dtype(),
                    shape,
                    spec.name,
                    spec.ty.dtype,
                    want.join(", "),
                    spec.axis
                )));
            }
            let n = shape[spec.axis];
            match len {
                Some((m, other)) if m != n => {
                    return Err(Error::Data(format!(
                        "data arrays disagree on the number of examples: `{other}` has {m}, \
                         `{}` has {n}",
                        spec.name
                    )));
                }
                _ => len = Some((n, &spec.name)),
            }
            taken.insert(spec.name.clone(), v.clone());
            axes.insert(spec.name.clone(), spec.axis);
        }
        Ok(Dataset {
            arrays: taken,
            axes,
            len: len.map_or(0, |(n, _)| n),
        })
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The examples `idx` (in that order) as model inputs.
    pub fn select(&self, idx: &[usize]) -> Env {
        self.arrays
            .iter()
            .map(|(name, v)| {
                let axis = Axis(self.axes[name]);
                let v = match v {
                    Value::Float(a) => Value::Float(gather(a, axis, idx)),
                    Value::Int(a) => Value::Int(gather(a, axis, idx)),
                    Value::Bool(a) => Value::Bool(gather(a, axis, idx)),
                };
                (name.clone(), v)
            })
            .collect()
    }

    /// The examples at `idx` as a data set of their own, e.g. the training part
    /// of a file that stores a `train_idx` array. Indices out of range are an error.
    pub fn subset(&self, idx: &[i64]) -> Result<Dataset, Error> {
        let mut rows = Vec::with_capacity(idx.len());
        for &i in idx {
            match usize::try_from(i) {
                Ok(i) if i < self.len => rows.push(i),
                _ => {
                    return Err(Error::Data(format!(
                        "example index {i} is out of range: the data has {} examples",
                        self.len
                    )));
                }
            }
        }
        Ok(Dataset {
            arrays: self.select(&rows),
            axes: self.axes.clone(),
            len: rows.len(),
        })
    }
}

/// `a.select(axis, idx)`, copying whole rows when `axis` is the leading axis of
/// a contiguous array: ndarray's general select on dynamic-rank arrays goes
/// index by index and cost more than the training step of a small model.
fn gather<T: Clone>(a: &ArrayD<T>, axis: Axis, idx: &[usize]) -> ArrayD<T> {
    let (Some(data), 0) = (a.as_slice(), axis.index()) else {
        return a.select(axis, idx);
    };
    let row = a.shape()[1..].iter().product::<usize>();
    let mut out = Vec::with_capacity(row * idx.len());
    for &i in idx {
        out.extend_from_slice(&data[i * row..(i + 1) * row]);
    }
    let mut shape = a.shape().to_vec();
    shape[0] = idx.len();
    ArrayD::from_shape_vec(shape, out).expect("the gathered rows fill the shape")
}

/// The order of `n` examples in an epoch: a Fisher–Yates shuffle driven by
/// SplitMix64 from `seed`, the same on every machine.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// How many rows of `logits` (`[N, C]`, f32) have their largest value at the
/// class `labels` (`[N]`, i64) names; the first maximum wins ties, NaN never does.
pub fn correct(logits: &ArrayD<f32>, labels: &ArrayD<i64>) -> usize {
    logits
        .rows()
        .into_iter()
        .zip(labels.iter())
        .filter(|(row, label)| {
            let mut best = 0;
            for (j, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = j;
                }
            }
            best as i64 == **label
        })
        .count()
}

/// Whether a type can hold class labels for `correct`.
pub(crate) fn is_labels(ty: &TensorType) -> bool {
    ty.dtype == DType::I64 && ty.rank() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row-copying fast path and the fallbacks agree with ndarray's select.
    #[test]
    fn gather_matches_select() {
        let a = ArrayD::from_shape_vec(vec![5, 2, 3], (0..30).collect::<Vec<i64>>()).unwrap();
        let idx = [4, 0, 0, 2];
        assert_eq!(gather(&a, Axis(0), &idx), a.select(Axis(0), &idx));
        assert_eq!(
            gather(&a, Axis(1), &[1, 0, 1]),
            a.select(Axis(1), &[1, 0, 1])
        );
        let t = a.clone().reversed_axes();
        assert_eq!(gather(&t, Axis(0), &[1, 2]), t.select(Axis(0), &[1, 2]));
        assert_eq!(gather(&a, Axis(0), &[]), a.select(Axis(0), &[]));
    }
}
