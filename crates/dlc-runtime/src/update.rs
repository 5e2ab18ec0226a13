//! Parameter updates in place: a training step computes each parameter's new
//! value into a staging buffer owned by the model, and a commit swaps the
//! staging buffers with the parameters' storage. No tensor is allocated or
//! copied for an updated parameter, and a step whose result is rejected (a
//! non-finite loss, a kernel error) leaves the parameters untouched.

use dlc_tensor::{Env, Tensor, ValueError};

use crate::buffer::{self, AlignedBuf, data_ptr_mut};
use crate::{CompiledModel, RunError};

/// One parameter updated from one output of the graph.
pub(crate) struct UpdateBinding {
    /// Index into the model's parameter ports.
    param: usize,
    /// Index into the model's outputs.
    output: usize,
    /// Where the output is written; swapped into the parameter on commit.
    staged: AlignedBuf,
}

/// The bound updates and whether the staging buffers hold an uncommitted step.
#[derive(Default)]
pub(crate) struct Updates {
    bindings: Vec<UpdateBinding>,
    pending: bool,
}

impl CompiledModel {
    /// Declares that output `output` is the new value of parameter `param`,
    /// for each pair: [`CompiledModel::run_staged`] then writes those outputs
    /// into staging buffers instead of returning them, and
    /// [`CompiledModel::commit_updates`] makes them the parameters' values.
    /// Each parameter and each output may appear once; their types must match.
    pub fn bind_updates(&mut self, pairs: &[(String, String)]) -> Result<(), RunError> {
        let mut bindings: Vec<UpdateBinding> = Vec::with_capacity(pairs.len());
        for (param, output) in pairs {
            let p = self.param_index(param)?;
            let Some(o) = self.outputs.iter().position(|o| &o.name == output) else {
                let known: Vec<&str> = self.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(ValueError::Unknown {
                    what: "output",
                    name: output.clone(),
                    known: known.join(", "),
                }
                .into());
            };
            let (pt, ot) = (&self.params[p].ty, &self.outputs[o].ty);
            if pt != ot || bindings.iter().any(|b| b.param == p || b.output == o) {
                return Err(ValueError::Mismatch {
                    what: "update of parameter",
                    name: param.clone(),
                    got: if pt == ot {
                        "a second update".into()
                    } else {
                        format!("output `{output}` of type {ot}")
                    },
                    expected: pt.clone(),
                }
                .into());
            }
            bindings.push(UpdateBinding {
                param: p,
                output: o,
                staged: AlignedBuf::zeroed(pt.size_bytes()),
            });
        }
        self.updates = Updates {
            bindings,
            pending: false,
        };
        Ok(())
    }

    /// Runs the model like [`CompiledModel::run`], but writes the outputs bound
    /// by [`CompiledModel::bind_updates`] to staging buffers; returns the other
    /// outputs by name. The parameters keep their values until
    /// [`CompiledModel::commit_updates`].
    pub fn run_staged(&mut self, inputs: &Env) -> Result<Env, RunError> {
        self.check_inputs(inputs)?;
        self.updates.pending = false;
        let mut staged: Vec<Option<*mut u8>> = vec![None; self.outputs.len()];
        for b in &mut self.updates.bindings {
            staged[b.output] = Some(b.staged.as_mut_ptr());
        }
        let mut outputs: Vec<Option<Tensor>> = (self.outputs.iter().zip(&staged))
            .map(|(p, s)| s.is_none().then(|| buffer::zeros(&p.ty)))
            .collect();
        let ptrs: Vec<*mut u8> = (outputs.iter_mut().zip(&staged))
            .map(|(t, s)| s.unwrap_or_else(|| data_ptr_mut(t.as_mut().expect("not staged"))))
            .collect();
        let mut arena = self.take_arena();
        let result = self.execute(&mut arena, inputs, &ptrs);
        self.return_arena(arena);
        result?;
        self.updates.pending = true;
        Ok((self.outputs.iter().zip(outputs))
            .filter_map(|(p, t)| Some((p.name.clone(), t?)))
            .collect())
    }

    /// Makes the values of the last successful [`CompiledModel::run_staged`]
    /// the parameters' values (by swapping buffers, without copying) and
    /// recomputes the values derived from the parameters; does nothing if there
    /// is no such run since the last commit.
    pub fn commit_updates(&mut self) {
        if !std::mem::take(&mut self.updates.pending) {
            return;
        }
        for b in &mut self.updates.bindings {
            let slot = self.params[b.param].buf.index();
            let storage = self.storage[slot]
                .as_mut()
                .expect("parameters have storage");
            std::mem::swap(storage, &mut b.staged);
        }
        // A failure is reported by the next run.
        self.refresh_derived();
    }
}
