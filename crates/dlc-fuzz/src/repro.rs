//! Test cases on disk: the printed model with a comment header, and its input
//! and parameter values in one `.npz`.

use std::path::{Path, PathBuf};

use dlc_tensor::{Env, IoError};

use crate::TestCase;

/// Writes `case` as `<dir>/<stem>.ir` (each `header` line as a `#` comment, then
/// the canonical text of the model) and `<dir>/<stem>.npz` (inputs and parameters
/// by name). Returns the `.ir` path.
pub fn write_case(
    dir: &Path,
    stem: &str,
    case: &TestCase,
    header: &[String],
) -> Result<PathBuf, IoError> {
    let file_err = |path: &Path, source| IoError::File {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let ir = dir.join(format!("{stem}.ir"));
    let mut text = String::new();
    for line in header {
        for l in line.lines() {
            text.push_str(&format!("# {l}\n").replace("# \n", "#\n"));
        }
    }
    text.push_str(&dlc_ir::syntax::print(&case.graph));
    std::fs::write(&ir, text).map_err(|e| file_err(&ir, e))?;
    let mut values: Env = case.inputs.clone();
    values.extend(case.params.iter().map(|(k, v)| (k.clone(), v.clone())));
    dlc_tensor::write_npz(&npz_path(&ir), &values)?;
    Ok(ir)
}

/// The `.npz` that goes with a case's `.ir` file (same stem, same directory).
pub fn npz_path(ir: &Path) -> PathBuf {
    ir.with_extension("npz")
}

/// Splits values read from a case's `.npz` into inputs and parameters of `graph`.
/// Returns the names that are neither.
pub fn split_values(graph: &dlc_ir::Graph, values: Env) -> (Env, Env, Vec<String>) {
    let (mut inputs, mut params, mut unknown) = (Env::new(), Env::new(), Vec::new());
    let is = |name: &str, mut ids: Box<dyn Iterator<Item = dlc_ir::NodeId> + '_>| {
        ids.any(|id| graph.node(id).names[0] == name)
    };
    for (name, v) in values {
        if is(&name, Box::new(graph.inputs())) {
            inputs.insert(name, v);
        } else if is(&name, Box::new(graph.params())) {
            params.insert(name, v);
        } else {
            unknown.push(name);
        }
    }
    (inputs, params, unknown)
}
