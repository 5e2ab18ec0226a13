//! Aligned byte storage and conversions between tensors and raw buffers.

use dlc_ir::{ConstValue, DType, TensorType};
use dlc_tensor::{Tensor, Value};
use ndarray::{ArrayD, IxDyn};

/// One cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A zero-initialised, 64-byte-aligned byte buffer.
#[derive(Default)]
pub struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> AlignedBuf {
        AlignedBuf {
            lines: vec![Line([0; 64]); len.div_ceil(64).max(1)],
            len,
        }
    }

    /// A copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> AlignedBuf {
        let mut b = AlignedBuf::zeroed(bytes.len());
        b.as_bytes_mut().copy_from_slice(bytes);
        b
    }

    /// The contents.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `lines` holds at least `len` initialised bytes, contiguously.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len) }
    }

    /// The contents, mutably.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), self.len) }
    }

    /// A pointer to the first byte (for the kernels' pointer table).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr().cast()
    }
}

/// The little-endian bytes of a tensor in row-major order (bools as 0/1 bytes).
pub fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    match t {
        Value::Float(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::Int(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::Bool(a) => a.iter().map(|&b| b as u8).collect(),
    }
}

/// A tensor of type `ty` from raw little-endian bytes.
pub fn tensor_from_bytes(bytes: &[u8], ty: &TensorType) -> Tensor {
    let shape = IxDyn(&ty.shape);
    let n = ty.numel();
    match ty.dtype {
        DType::F32 => Value::Float(
            ArrayD::from_shape_vec(
                shape,
                bytes[..4 * n]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            )
            .expect("byte count matches the type"),
        ),
        DType::I64 => Value::Int(
            ArrayD::from_shape_vec(
                shape,
                bytes[..8 * n]
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            )
            .expect("byte count matches the type"),
        ),
        DType::Bool => Value::Bool(
            ArrayD::from_shape_vec(shape, bytes[..n].iter().map(|&b| b != 0).collect())
                .expect("byte count matches the type"),
        ),
    }
}

/// The bytes of a constant stored as `dtype`.
pub fn const_bytes(value: &ConstValue, dtype: DType) -> Vec<u8> {
    let f = value.to_f64();
    match dtype {
        DType::F32 => f.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect(),
        DType::I64 => match value {
            ConstValue::Int(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            _ => f.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect(),
        },
        DType::Bool => f.iter().map(|&x| (x != 0.0) as u8).collect(),
    }
}

/// A zero tensor of a type.
pub fn zeros(ty: &TensorType) -> Tensor {
    let shape = IxDyn(&ty.shape);
    match ty.dtype {
        DType::F32 => Value::Float(ArrayD::zeros(shape)),
        DType::I64 => Value::Int(ArrayD::zeros(shape)),
        DType::Bool => Value::Bool(ArrayD::from_elem(shape, false)),
    }
}

/// A pointer to a tensor's contiguous data, or `None` if it is not in standard layout.
pub fn data_ptr(t: &Tensor) -> Option<*mut u8> {
    match t {
        Value::Float(a) => a.as_slice().map(|s| s.as_ptr() as *mut u8),
        Value::Int(a) => a.as_slice().map(|s| s.as_ptr() as *mut u8),
        Value::Bool(a) => a.as_slice().map(|s| s.as_ptr() as *mut u8),
    }
}

/// A pointer to a tensor's contiguous data for writing (tensors made by [`zeros`] are contiguous).
pub fn data_ptr_mut(t: &mut Tensor) -> *mut u8 {
    match t {
        Value::Float(a) => a
            .as_slice_mut()
            .expect("outputs are contiguous")
            .as_mut_ptr()
            .cast(),
        Value::Int(a) => a
            .as_slice_mut()
            .expect("outputs are contiguous")
            .as_mut_ptr()
            .cast(),
        Value::Bool(a) => a
            .as_slice_mut()
            .expect("outputs are contiguous")
            .as_mut_ptr()
            .cast(),
    }
}

/// A standard-layout copy of a tensor.
pub fn to_standard(t: &Tensor) -> Tensor {
    match t {
        Value::Float(a) => Value::Float(a.as_standard_layout().into_owned()),
        Value::Int(a) => Value::Int(a.as_standard_layout().into_owned()),
        Value::Bool(a) => Value::Bool(a.as_standard_layout().into_owned()),
    }
}
