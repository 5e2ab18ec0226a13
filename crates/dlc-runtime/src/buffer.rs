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

/// The raw bytes of a slice of plain numbers (no padding, no invalid bit patterns).
fn raw<T: Copy>(s: &[T]) -> &[u8] {
    // SAFETY: f32, i64 and bool have no padding; any initialised value is
    // readable as bytes; the length covers exactly the slice.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

/// Copies a tensor's elements in row-major order into `dst` (native byte order,
/// which the generated code uses; bools as 0/1 bytes). `dst` has exactly the
/// tensor's byte size.
pub fn write_tensor(t: &Tensor, dst: &mut [u8]) {
    let standard;
    let t = if data_ptr(t).is_some() {
        t
    } else {
        standard = to_standard(t);
        &standard
    };
    let bytes = match t {
        Value::Float(a) => raw(a.as_slice().expect("standard layout")),
        Value::Int(a) => raw(a.as_slice().expect("standard layout")),
        Value::Bool(a) => raw(a.as_slice().expect("standard layout")),
    };
    dst.copy_from_slice(bytes);
}

/// A buffer holding a copy of a tensor's elements (see [`write_tensor`]).
pub fn tensor_buf(t: &Tensor) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed(t.ty().size_bytes());
    write_tensor(t, buf.as_bytes_mut());
    buf
}

/// Reinterprets native-order bytes as numbers (`bytes` holds `out.len()` of them).
fn read_raw<T: Copy>(bytes: &[u8], out: &mut [T]) {
    let n = std::mem::size_of_val(out);
    // SAFETY: `out` is `n` writable bytes; every bit pattern is a valid f32/i64.
    let dst = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), n) };
    dst.copy_from_slice(&bytes[..n]);
}

/// A tensor of type `ty` from raw native-order bytes (as [`write_tensor`] writes them).
pub fn tensor_from_bytes(bytes: &[u8], ty: &TensorType) -> Tensor {
    let shape = IxDyn(&ty.shape);
    let n = ty.numel();
    match ty.dtype {
        DType::F32 => {
            let mut a = ArrayD::<f32>::zeros(shape);
            read_raw(
                bytes,
                a.as_slice_mut().expect("fresh arrays are contiguous"),
            );
            Value::Float(a)
        }
        DType::I64 => {
            let mut a = ArrayD::<i64>::zeros(shape);
            read_raw(
                bytes,
                a.as_slice_mut().expect("fresh arrays are contiguous"),
            );
            Value::Int(a)
        }
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
        DType::F32 => f.iter().flat_map(|&x| (x as f32).to_ne_bytes()).collect(),
        DType::I64 => match value {
            ConstValue::Int(v) => v.iter().flat_map(|x| x.to_ne_bytes()).collect(),
            _ => f.iter().flat_map(|&x| (x as i64).to_ne_bytes()).collect(),
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
