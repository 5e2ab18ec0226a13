//! Reading and writing named tensors: `.npz` (numpy) and `.safetensors`.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpzError};
use safetensors::{Dtype, SafeTensors, View};

use crate::{Env, Tensor, Value};

/// A tensor file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file cannot be opened, read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid archive of the expected format.
    #[error("{path}: not a valid {format} file: {message}")]
    Format {
        /// The file.
        path: String,
        /// "npz" or "safetensors".
        format: &'static str,
        /// What the decoder reported.
        message: String,
    },
    /// An array has a dtype dlc cannot use.
    #[error(
        "{path}: array `{name}` has unsupported dtype {dtype} (dlc reads f32, f64, i64, i32, bool)"
    )]
    Dtype {
        /// The file.
        path: String,
        /// The array's name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// The file extension is not one dlc knows.
    #[error("{0}: unknown tensor file type (expected .npz or .safetensors)")]
    Extension(String),
}

fn file_err(path: &Path, source: std::io::Error) -> IoError {
    IoError::File {
        path: path.display().to_string(),
        source,
    }
}

/// Reads named tensors from a `.npz` or `.safetensors` file, chosen by extension.
pub fn read_tensors(path: &Path) -> Result<Env, IoError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npz") => read_npz(path),
        Some("safetensors") => read_safetensors(path),
        _ => Err(IoError::Extension(path.display().to_string())),
    }
}

/// Reads every array of a `.npz` file (plain or compressed).
///
/// f64 arrays are rounded to f32 and i32 arrays widened to i64; other dtypes
/// (strings, complex, ...) are skipped, since archives often carry metadata.
pub fn read_npz(path: &Path) -> Result<Env, IoError> {
    let file = File::open(path).map_err(|e| file_err(path, e))?;
    let fmt = |e: ReadNpzError| IoError::Format {
        path: path.display().to_string(),
        format: "npz",
        message: e.to_string(),
    };
    let mut npz = NpzReader::new(BufReader::new(file)).map_err(fmt)?;
    let mut env = Env::new();
    for raw in npz.names().map_err(fmt)? {
        let name = raw.strip_suffix(".npy").unwrap_or(&raw).to_string();
        if let Some(v) = read_member(&mut npz, &raw).map_err(fmt)? {
            env.insert(name, v);
        }
    }
    Ok(env)
}

/// Reads one archive member as the first dtype that fits, or `None` for dtypes dlc does not use.
fn read_member<R: std::io::Read + std::io::Seek>(
    npz: &mut NpzReader<R>,
    name: &str,
) -> Result<Option<Tensor>, ReadNpzError> {
    fn attempt<T, R: std::io::Read + std::io::Seek>(
        npz: &mut NpzReader<R>,
        name: &str,
    ) -> Result<Option<ArrayD<T>>, ReadNpzError>
    where
        T: ndarray_npy::ReadableElement,
    {
        match npz.by_name::<OwnedRepr<T>, IxDyn>(name) {
            Ok(a) => Ok(Some(a)),
            Err(ReadNpzError::Npy(ndarray_npy::ReadNpyError::WrongDescriptor(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }
    if let Some(a) = attempt::<f32, _>(npz, name)? {
        return Ok(Some(Value::Float(a)));
    }
    if let Some(a) = attempt::<i64, _>(npz, name)? {
        return Ok(Some(Value::Int(a)));
    }
    if let Some(a) = attempt::<bool, _>(npz, name)? {
        return Ok(Some(Value::Bool(a)));
    }
    if let Some(a) = attempt::<f64, _>(npz, name)? {
        return Ok(Some(Value::Float(a.mapv(|x| x as f32))));
    }
    if let Some(a) = attempt::<i32, _>(npz, name)? {
        return Ok(Some(Value::Int(a.mapv(i64::from))));
    }
    Ok(None)
}

/// Writes named tensors to an uncompressed `.npz` file.
pub fn write_npz(path: &Path, env: &Env) -> Result<(), IoError> {
    let file = File::create(path).map_err(|e| file_err(path, e))?;
    let fmt = |e: ndarray_npy::WriteNpzError| IoError::Format {
        path: path.display().to_string(),
        format: "npz",
        message: e.to_string(),
    };
    let mut npz = NpzWriter::new(BufWriter::new(file));
    for (name, v) in env {
        match v {
            Value::Float(a) => npz.add_array(name.as_str(), a),
            Value::Int(a) => npz.add_array(name.as_str(), a),
            Value::Bool(a) => npz.add_array(name.as_str(), a),
        }
        .map_err(fmt)?;
    }
    npz.finish().map_err(fmt)?;
    Ok(())
}

/// Reads every tensor of a `.safetensors` file (f32, f64 → f32, i64, i32 → i64, bool).
pub fn read_safetensors(path: &Path) -> Result<Env, IoError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    let p = path.display().to_string();
    let st = SafeTensors::deserialize(&bytes).map_err(|e| IoError::Format {
        path: p.clone(),
        format: "safetensors",
        message: e.to_string(),
    })?;
    let mut env = Env::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let le = |n: usize| data.chunks_exact(n);
        let value = match view.dtype() {
            Dtype::F32 => Value::Float(shaped(
                &shape,
                le(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())),
            )),
            Dtype::F64 => Value::Float(shaped(
                &shape,
                le(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32),
            )),
            Dtype::I64 => Value::Int(shaped(
                &shape,
                le(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())),
            )),
            Dtype::I32 => Value::Int(shaped(
                &shape,
                le(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64),
            )),
            Dtype::BOOL => Value::Bool(shaped(&shape, data.iter().map(|&b| b != 0))),
            other => {
                return Err(IoError::Dtype {
                    path: p,
                    name,
                    dtype: format!("{other:?}"),
                });
            }
        };
        env.insert(name, value);
    }
    Ok(env)
}

/// Builds an array of `shape` from row-major values (safetensors has validated the count).
fn shaped<T>(shape: &[usize], values: impl Iterator<Item = T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), values.collect())
        .expect("safetensors validated the element count")
}

/// A tensor serialised for safetensors: dtype, shape and little-endian bytes.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes named tensors to a `.safetensors` file.
pub fn write_safetensors(path: &Path, env: &Env) -> Result<(), IoError> {
    let raws: Vec<(String, Raw)> = env
        .iter()
        .map(|(name, v)| {
            let shape = v.shape().to_vec();
            let (dtype, bytes) = match v {
                Value::Float(a) => (Dtype::F32, a.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Value::Int(a) => (Dtype::I64, a.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Value::Bool(a) => (Dtype::BOOL, a.iter().map(|&b| b as u8).collect()),
            };
            (
                name.clone(),
                Raw {
                    dtype,
                    shape,
                    bytes,
                },
            )
        })
        .collect();
    let bytes =
        safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), None).map_err(|e| {
            IoError::Format {
                path: path.display().to_string(),
                format: "safetensors",
                message: e.to_string(),
            }
        })?;
    std::fs::write(path, bytes).map_err(|e| file_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Env {
        let mut env = Env::new();
        env.insert(
            "w".into(),
            Value::Float(
                ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1., 2., 3., 4., 5., 6.]).unwrap(),
            ),
        );
        env.insert(
            "labels".into(),
            Value::Int(ArrayD::from_shape_vec(IxDyn(&[3]), vec![0, 7, -1]).unwrap()),
        );
        env.insert(
            "mask".into(),
            Value::Bool(ArrayD::from_shape_vec(IxDyn(&[2]), vec![true, false]).unwrap()),
        );
        env
    }

    #[test]
    fn npz_and_safetensors_round_trip() {
        let dir = std::env::temp_dir().join(format!("dlc-tensor-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["t.npz", "t.safetensors"] {
            let p = dir.join(file);
            std::fs::write(&p, b"").unwrap();
            assert!(read_tensors(&p).is_err(), "empty {file} must be an error");
            write_npz(&dir.join("t.npz"), &sample()).unwrap();
            write_safetensors(&dir.join("t.safetensors"), &sample()).unwrap();
            assert_eq!(read_tensors(&p).unwrap(), sample());
        }
        assert!(matches!(
            read_tensors(&dir.join("t.txt")),
            Err(IoError::Extension(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn reference_file_reads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/lstm_cell.npz");
        let env = read_npz(&p).unwrap();
        assert_eq!(env["weight_ih"].shape(), &[16, 5]);
        assert!(env.contains_key("out_h1"));
    }
}
