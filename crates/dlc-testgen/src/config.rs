//! What the generator may produce.

use crate::Family;

/// Knobs of the random model generator. `GenConfig::default()` covers every family
/// with small graphs; the builder methods narrow or widen it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// The families a graph's main ops are drawn from (uniformly). Must not be empty.
    pub families: Vec<Family>,
    /// The largest number of main ops per graph (each may bring a few helper ops,
    /// e.g. `abs` and `add` to make a `log` operand positive). Default 6.
    pub max_ops: usize,
    /// The largest dimension drawn for a fresh shape. Sizes are biased towards
    /// 1, 3, 7, 13 and 31; 64, 100 and 257 appear when this allows. Default 31.
    pub max_dim: usize,
    /// The largest rank of a fresh generic tensor (1 to 6; layers such as conv2d use
    /// the rank they need regardless). Default 4.
    pub max_rank: usize,
    /// The largest number of elements of any value in the graph. Default 2^14.
    pub max_numel: usize,
    /// The largest number of multiply-adds of one op (matmul, conv, recurrent,
    /// attention). Default 2^20.
    pub max_work: usize,
    /// The largest number of graph outputs (at least 1). Default 3.
    pub max_outputs: usize,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            families: Family::ALL.to_vec(),
            max_ops: 6,
            max_dim: 31,
            max_rank: 4,
            max_numel: 1 << 14,
            max_work: 1 << 20,
            max_outputs: 3,
        }
    }
}

impl GenConfig {
    /// The default configuration restricted to one family.
    pub fn only(family: Family) -> GenConfig {
        GenConfig::default().with_families(&[family])
    }

    /// Draws main ops from these families only.
    pub fn with_families(mut self, families: &[Family]) -> GenConfig {
        self.families = families.to_vec();
        self
    }

    /// Sets [`GenConfig::max_ops`].
    pub fn with_max_ops(mut self, n: usize) -> GenConfig {
        self.max_ops = n;
        self
    }

    /// Sets [`GenConfig::max_dim`].
    pub fn with_max_dim(mut self, n: usize) -> GenConfig {
        self.max_dim = n;
        self
    }

    /// Sets [`GenConfig::max_rank`].
    pub fn with_max_rank(mut self, n: usize) -> GenConfig {
        self.max_rank = n;
        self
    }

    /// Sets [`GenConfig::max_numel`].
    pub fn with_max_numel(mut self, n: usize) -> GenConfig {
        self.max_numel = n;
        self
    }

    /// Sets [`GenConfig::max_work`].
    pub fn with_max_work(mut self, n: usize) -> GenConfig {
        self.max_work = n;
        self
    }

    /// Sets [`GenConfig::max_outputs`].
    pub fn with_max_outputs(mut self, n: usize) -> GenConfig {
        self.max_outputs = n;
        self
    }

    /// The limits clamped to what the generator needs to work: at least one family,
    /// op, output; rank between 1 and 6 (layers use the rank they need regardless); dims and
    /// element counts large enough for the smallest layer.
    pub(crate) fn sanitized(&self) -> GenConfig {
        let mut c = self.clone();
        if c.families.is_empty() {
            c.families = Family::ALL.to_vec();
        }
        c.max_ops = c.max_ops.max(1);
        c.max_dim = c.max_dim.max(2);
        c.max_rank = c.max_rank.clamp(1, 6);
        c.max_numel = c.max_numel.max(64);
        c.max_work = c.max_work.max(c.max_numel);
        c.max_outputs = c.max_outputs.max(1);
        c
    }
}
