//! The memory planner: arena offsets for temporary buffers from their lifetimes.
//!
//! A temporary buffer is live from the first kernel that touches it to the last.
//! Kernels that declare an in-place pair may write their output over an input
//! that dies at that kernel (same size, both temporaries): the two buffers then
//! share one slot. Slots are placed greedily, largest first, at the lowest
//! 64-byte-aligned offset that overlaps no slot whose lifetime intersects
//! (the "greedy by size" strategy of TFLite's arena planner).

use crate::kernel::{Buffer, BufferKind, Kernel};

/// Alignment of every arena offset (a cache line, and enough for any vector).
pub const ALIGN: usize = 64;

/// Arena placement of every temporary buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Byte offset in the arena of each buffer (`None` for non-temporaries).
    pub offsets: Vec<Option<usize>>,
    /// Total arena size in bytes (the plan's peak).
    pub arena_bytes: usize,
    /// Sum of the sizes of all temporaries (what the arena would need without reuse).
    pub unshared_bytes: usize,
    /// Number of in-place merges performed.
    pub in_place: usize,
}

/// Inclusive kernel-index range during which a slot must keep its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// First kernel that touches it.
    pub first: usize,
    /// Last kernel that touches it.
    pub last: usize,
}

impl Lifetime {
    fn overlaps(self, o: Lifetime) -> bool {
        self.first <= o.last && o.first <= self.last
    }
}

/// Plans the arena for `buffers` used by `kernels` (in execution order).
pub fn plan(buffers: &[Buffer], kernels: &[Kernel]) -> MemoryPlan {
    let n = buffers.len();
    let temp = |b: usize| buffers[b].kind == BufferKind::Temp;
    let mut life: Vec<Option<Lifetime>> = vec![None; n];
    for (k, kernel) in kernels.iter().enumerate() {
        for b in kernel.inputs.iter().chain(&kernel.outputs) {
            let l = life[b.index()].get_or_insert(Lifetime { first: k, last: k });
            l.first = l.first.min(k);
            l.last = l.last.max(k);
        }
    }
    // In-place merges: `slot[b]` is the buffer whose slot b shares.
    let mut slot: Vec<usize> = (0..n).collect();
    let mut in_place = 0;
    for (k, kernel) in kernels.iter().enumerate() {
        for &(i, o) in &kernel.in_place {
            let (a, b) = (slot[kernel.inputs[i].index()], kernel.outputs[o].index());
            let (Some(la), Some(lb)) = (life[a], life[b]) else {
                continue;
            };
            let fits = temp(a)
                && temp(b)
                && slot[b] == b
                && buffers[a].bytes() == buffers[b].bytes()
                && la.last == k
                && lb.first == k
                && !kernel.inputs.iter().any(|x| x.index() == b);
            if fits {
                slot[b] = a;
                life[a] = Some(Lifetime {
                    first: la.first,
                    last: lb.last,
                });
                life[b] = None;
                in_place += 1;
            }
        }
    }
    let roots: Vec<(usize, usize, Lifetime)> = (0..n)
        .filter(|&b| temp(b) && slot[b] == b)
        .filter_map(|b| life[b].map(|l| (b, buffers[b].bytes().div_ceil(ALIGN) * ALIGN, l)))
        .collect();
    let requests: Vec<(usize, Lifetime)> = roots.iter().map(|&(_, size, l)| (size, l)).collect();
    let (placed, arena_bytes) = place(&requests);
    let mut offsets = vec![None; n];
    for (&(b, _, _), &off) in roots.iter().zip(&placed) {
        offsets[b] = Some(off);
    }
    for b in 0..n {
        if temp(b) && slot[b] != b {
            offsets[b] = offsets[slot[b]];
        } else if temp(b) && offsets[b].is_none() {
            offsets[b] = Some(0); // never touched by a kernel
        }
    }
    MemoryPlan {
        offsets,
        arena_bytes,
        unshared_bytes: roots.iter().map(|&(_, s, _)| s).sum(),
        in_place,
    }
}

/// Places `(size, lifetime)` requests; returns each offset and the total size.
pub fn place(requests: &[(usize, Lifetime)]) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(requests[i].0), requests[i].1.first, i));
    let mut offsets = vec![0; requests.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut total = 0;
    for i in order {
        let (size, life) = requests[i];
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| requests[j].1.overlaps(life))
            .map(|&j| (offsets[j], offsets[j] + requests[j].0))
            .collect();
        busy.sort_unstable();
        let mut at = 0;
        for (lo, hi) in busy {
            if at + size <= lo {
                break;
            }
            at = at.max(hi);
        }
        offsets[i] = at;
        total = total.max(at + size);
        placed.push(i);
    }
    (offsets, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// No two requests with intersecting lifetimes share a byte.
        #[test]
        fn live_buffers_never_overlap(reqs in prop::collection::vec((1usize..5000, 0usize..30, 0usize..10), 1..60)) {
            let requests: Vec<(usize, Lifetime)> = reqs
                .iter()
                .map(|&(size, first, len)| (size, Lifetime { first, last: first + len }))
                .collect();
            let (offsets, total) = place(&requests);
            for i in 0..requests.len() {
                prop_assert!(offsets[i] + requests[i].0 <= total);
                for j in 0..i {
                    if requests[i].1.overlaps(requests[j].1) {
                        let disjoint = offsets[i] + requests[i].0 <= offsets[j]
                            || offsets[j] + requests[j].0 <= offsets[i];
                        prop_assert!(disjoint, "{i} and {j} overlap");
                    }
                }
            }
        }
    }

    #[test]
    fn dead_slots_are_reused() {
        let l = |first, last| Lifetime { first, last };
        let (offsets, total) = place(&[(100, l(0, 1)), (100, l(2, 3)), (50, l(1, 2))]);
        assert_eq!(total, 150);
        assert_eq!(offsets[0], offsets[1]);
    }
}
