//! Element types, tensor types and the shape arithmetic every stage shares.

use std::fmt;

/// The largest number of elements one tensor may hold (2^31, i.e. 8 GiB of f32).
///
/// Shapes whose element count exceeds this (or overflows `usize`) are refused when
/// the graph is built, before anything is allocated.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// The largest rank a tensor may have.
pub const MAX_RANK: usize = 8;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float: the compute type of every arithmetic op.
    F32,
    /// 64-bit signed integer: indices and class labels.
    I64,
    /// Boolean: masks and comparison results.
    Bool,
}

impl DType {
    /// The spelling used in `.ir` files (`f32`, `i64`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// Parses the `.ir` spelling of a dtype.
    pub fn from_name(name: &str) -> Option<DType> {
        match name {
            "f32" => Some(DType::F32),
            "i64" => Some(DType::I64),
            "bool" => Some(DType::Bool),
            _ => None,
        }
    }

    /// Size of one element in bytes, as stored by the runtime.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::I64 => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dtype together with a static, fully known shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
}

impl TensorType {
    /// A tensor type from a dtype and a shape.
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> TensorType {
        TensorType {
            dtype,
            shape: shape.into(),
        }
    }

    /// An f32 tensor of the given shape.
    pub fn f32(shape: impl Into<Vec<usize>>) -> TensorType {
        TensorType::new(DType::F32, shape)
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The number of bytes the tensor occupies.
    pub fn size_bytes(&self) -> usize {
        self.numel() * self.dtype.size_bytes()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, ShapeDisplay(&self.shape))
    }
}

/// Displays a shape as `[2, 3, 4]`.
pub struct ShapeDisplay<'a>(pub &'a [usize]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// Why a shape is not acceptable as a tensor shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeLimit {
    /// A dimension is zero; dlc requires every dimension to be at least 1.
    ZeroDim(usize),
    /// More than [`MAX_RANK`] dimensions.
    RankTooLarge(usize),
    /// The element count overflows or exceeds [`MAX_ELEMENTS`].
    TooManyElements,
}

impl fmt::Display for ShapeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeLimit::ZeroDim(axis) => write!(
                f,
                "dimension {axis} is 0; dlc requires every dimension to be at least 1"
            ),
            ShapeLimit::RankTooLarge(rank) => {
                write!(f, "rank {rank} exceeds the maximum rank {MAX_RANK}")
            }
            ShapeLimit::TooManyElements => write!(
                f,
                "the element count exceeds the limit of {MAX_ELEMENTS} elements per tensor"
            ),
        }
    }
}

/// Checks that a shape is within dlc's limits: rank, no zero dims, element count.
pub fn check_shape(shape: &[usize]) -> Result<(), ShapeLimit> {
    if shape.len() > MAX_RANK {
        return Err(ShapeLimit::RankTooLarge(shape.len()));
    }
    if let Some(axis) = shape.iter().position(|&d| d == 0) {
        return Err(ShapeLimit::ZeroDim(axis));
    }
    let mut n: usize = 1;
    for &d in shape {
        n = n.checked_mul(d).ok_or(ShapeLimit::TooManyElements)?;
        if n > MAX_ELEMENTS {
            return Err(ShapeLimit::TooManyElements);
        }
    }
    Ok(())
}

/// Numpy broadcasting of two shapes: align on the right, size-1 dims stretch.
///
/// Returns `None` when the shapes are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Whether `from` broadcasts to exactly `to` (numpy rules, one direction).
pub fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len()
        && from
            .iter()
            .rev()
            .zip(to.iter().rev())
            .all(|(&f, &t)| f == t || f == 1)
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Normalises a possibly negative axis against a rank (python style).
///
/// Returns `None` when the axis is out of range.
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes(&[4, 1, 6], &[5, 1]), Some(vec![4, 5, 6]));
        assert_eq!(broadcast_shapes(&[3], &[]), Some(vec![3]));
        assert_eq!(broadcast_shapes(&[2, 3], &[3, 2]), None);
        assert!(broadcasts_to(&[1, 6], &[4, 5, 6]));
        assert!(!broadcasts_to(&[4, 5, 6], &[5, 6]));
    }

    #[test]
    fn shape_limits_are_enforced() {
        assert_eq!(check_shape(&[2, 0]), Err(ShapeLimit::ZeroDim(1)));
        assert_eq!(
            check_shape(&[1 << 20, 1 << 20]),
            Err(ShapeLimit::TooManyElements)
        );
        assert_eq!(
            check_shape(&[usize::MAX, 3]),
            Err(ShapeLimit::TooManyElements)
        );
        assert!(check_shape(&[]).is_ok());
        assert!(check_shape(&[1; 9]).is_err());
    }

    #[test]
    fn axes_normalise_like_python() {
        assert_eq!(normalize_axis(-1, 3), Some(2));
        assert_eq!(normalize_axis(3, 3), None);
        assert_eq!(normalize_axis(-4, 3), None);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
    }
}
