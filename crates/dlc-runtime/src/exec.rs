//! Kernel execution: binding buffers to the pointer table, splitting kernels over threads.

use dlc_codegen::emit::builder::status;
use dlc_codegen::{BufferKind, Kernel, KernelFn};
use dlc_tensor::{Env, Tensor};

use crate::buffer::{data_ptr, to_standard};
use crate::{Arena, CompiledModel, RunError};

/// When kernels are split over threads.
#[derive(Clone, Debug)]
pub struct Threading {
    /// Maximum threads per kernel (1 = single-threaded).
    pub threads: usize,
    /// A kernel is split only if its estimated single-thread time exceeds this many
    /// microseconds (below it, waking a second thread costs more than it saves).
    pub min_split_us: f64,
}

impl Default for Threading {
    fn default() -> Threading {
        Threading {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            min_split_us: 40.0,
        }
    }
}

impl Threading {
    /// Single-threaded execution.
    pub fn single() -> Threading {
        Threading {
            threads: 1,
            ..Threading::default()
        }
    }
}

/// The pointer table of one run, shareable with worker threads.
#[derive(Clone, Copy)]
struct Table(*const *mut u8);

// SAFETY: the table and every buffer it points to outlive the run; kernels split
// over threads write disjoint ranges of their outputs (each parallel index owns
// its slice of every output) and only read shared inputs.
unsafe impl Send for Table {}
// SAFETY: as above.
unsafe impl Sync for Table {}

/// One thread's private scratch block.
#[derive(Clone, Copy)]
struct Scratch(*mut u8);

// SAFETY: each scratch block is used by exactly one thread at a time (chunk c ↔ block c).
unsafe impl Send for Scratch {}
// SAFETY: sharing the list of blocks only hands each block to its own chunk.
unsafe impl Sync for Scratch {}

/// Estimated single-thread time of a kernel in microseconds (roofline of a
/// 128-bit FMA core at ~16 GFLOP/s sustained and ~12 GB/s of memory traffic).
fn estimate_us(k: &Kernel) -> f64 {
    (k.flops / 16e3).max(k.bytes / 12e3)
}

impl CompiledModel {
    /// Binds the buffers and runs every kernel; checks the status word after
    /// each. `outputs[k]` points to output `k`'s storage, of its type's size.
    pub(crate) fn execute(
        &self,
        arena: &mut Arena,
        inputs: &Env,
        outputs: &[*mut u8],
    ) -> Result<(), RunError> {
        self.derived_status()?;
        // Inputs in standard layout (copies only for non-contiguous arrays).
        let owned: Vec<Option<Tensor>> = self
            .inputs
            .iter()
            .map(|p| {
                let t = &inputs[&p.name];
                data_ptr(t).is_none().then(|| to_standard(t))
            })
            .collect();
        let ptrs: Vec<*const u8> = (self.inputs.iter().zip(&owned))
            .map(|(p, o)| {
                let t = o.as_ref().unwrap_or(&inputs[&p.name]);
                data_ptr(t)
                    .expect("inputs are in standard layout")
                    .cast_const()
            })
            .collect();
        self.execute_raw(arena, &ptrs, outputs)
    }

    /// [`CompiledModel::execute`] on raw storage: `inputs[k]` points to input
    /// `k`'s elements in standard layout, of its type's size.
    pub(crate) fn execute_raw(
        &self,
        arena: &mut Arena,
        inputs: &[*const u8],
        outputs: &[*mut u8],
    ) -> Result<(), RunError> {
        let low = &self.program.lowered;
        let mut table: Vec<*mut u8> = Vec::with_capacity(low.buffers.len() + 1);
        table.push(arena.status.as_mut_ptr());
        let arena_base = arena.mem.as_mut_ptr();
        for (i, b) in low.buffers.iter().enumerate() {
            let ptr = match b.kind {
                // Kernels never write their inputs.
                BufferKind::Input(k) => inputs[k].cast_mut(),
                BufferKind::Output(k) => outputs[k],
                BufferKind::Param(_) | BufferKind::Const(_) => self.storage[i]
                    .as_ref()
                    .expect("params and constants have storage")
                    .as_bytes()
                    .as_ptr()
                    as *mut u8,
                BufferKind::Temp => {
                    let off = self.program.plan.offsets[i].expect("temporaries are planned");
                    // SAFETY: the plan keeps every temporary inside the arena.
                    unsafe { arena_base.add(off) }
                }
            };
            table.push(ptr);
        }
        arena.status.as_bytes_mut()[..4].copy_from_slice(&0u32.to_le_bytes());
        let t = Table(table.as_ptr());
        let scratch: Vec<Scratch> = arena
            .scratch
            .iter_mut()
            .map(|s| Scratch(s.as_mut_ptr()))
            .collect();
        for (k, f) in low.kernels.iter().zip(&self.program.code.fns) {
            self.launch(k, *f, t, &scratch);
            let code = u32::from_le_bytes(arena.status.as_bytes()[..4].try_into().unwrap());
            if code != 0 {
                return Err(RunError::Kernel {
                    kernel: k.name.clone(),
                    message: describe(code),
                });
            }
        }
        Ok(())
    }

    /// Runs one kernel, split over threads when it is worth it; chunk `c` uses
    /// scratch block `c`.
    fn launch(&self, k: &Kernel, f: KernelFn, t: Table, scratch: &[Scratch]) {
        let n = k.parallel as i64;
        let threads = self
            .threading
            .threads
            .min(k.parallel)
            .min(scratch.len())
            .max(1);
        if threads == 1 || estimate_us(k) < self.threading.min_split_us {
            // SAFETY: the table binds every buffer the kernel was compiled for,
            // with exactly the compiled sizes; 0..n is its whole range; scratch
            // block 0 has at least the kernel's scratch size.
            unsafe { f(t.0, 0, n, scratch[0].0) };
            return;
        }
        let grain = 4i64;
        let chunk = ((n + threads as i64 - 1) / threads as i64 + grain - 1) / grain * grain;
        rayon::scope(|s| {
            for c in 1..threads as i64 {
                let (lo, hi) = ((c * chunk).min(n), ((c + 1) * chunk).min(n));
                if lo < hi {
                    let sc = scratch[c as usize];
                    s.spawn(move |_| {
                        let (t, sc) = (t, sc);
                        // SAFETY: as above, on a disjoint sub-range with a private scratch block.
                        unsafe { f(t.0, lo, hi, sc.0) }
                    });
                }
            }
            // SAFETY: as above; the calling thread takes the first chunk.
            unsafe { f(t.0, 0, chunk.min(n), scratch[0].0) };
        });
    }
}

/// A readable message for a status word.
fn describe(code: u32) -> String {
    let mut parts = Vec::new();
    if code & status::BAD_INDEX != 0 {
        parts.push("an index is outside the indexed axis");
    }
    if code & status::BAD_LABEL != 0 {
        parts.push("a class label is outside 0..classes");
    }
    if code & status::OUT_OF_BOUNDS != 0 {
        parts.push("a memory access fell outside its buffer (checked mode; this is a dlc bug)");
    }
    if parts.is_empty() {
        format!("unknown status {code:#x}")
    } else {
        parts.join("; ")
    }
}
