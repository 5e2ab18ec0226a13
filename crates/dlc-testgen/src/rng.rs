//! The generator's random stream: [`SplitMix64`] plus the draws the generator needs.
//!
//! Every draw uses integer arithmetic or IEEE-exact float operations only, so a
//! seed gives the same graph on every machine.

use dlc_ir::init::SplitMix64;

/// A deterministic random stream with convenience draws.
#[derive(Clone, Debug)]
pub(crate) struct Rng(SplitMix64);

impl Rng {
    /// A stream from a seed (mixed so that nearby seeds give unrelated streams).
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(dlc_ir::init::mix64(
            seed ^ 0x7465_7374_6765_6e21,
        )))
    }

    /// 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((self.u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            lo
        } else {
            lo + self.below(hi - lo + 1)
        }
    }

    /// True with probability `percent / 100`.
    pub fn pct(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.u64() >> 63 == 1
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// An index drawn with the given relative weights (not all zero).
    pub fn weighted(&mut self, weights: &[usize]) -> usize {
        let total: usize = weights.iter().sum();
        let mut r = self.below(total.max(1));
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0.uniform()
    }

    /// A multiple of `1/q` in `[lo, hi]` (exactly representable for power-of-two `q`).
    pub fn grid(&mut self, lo: f64, hi: f64, q: f64) -> f64 {
        let (a, b) = ((lo * q).ceil() as i64, (hi * q).floor() as i64);
        (a + self.below((b - a + 1).max(1) as usize) as i64) as f64 / q
    }

    /// Shuffles a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// A dimension in `1..=max`, biased towards 1, 3, 7, 13 and 31 (and 2), with
    /// the occasional 64, 100 or 257 when `max` allows, else uniform.
    pub fn dim(&mut self, max: usize) -> usize {
        let max = max.max(1);
        let d = match self.below(100) {
            0..=19 => 1,
            20..=35 => 3,
            36..=49 => 7,
            50..=61 => 13,
            62..=69 => 31,
            70..=75 => 2,
            76..=79 => self.pick(&[64, 100, 257]),
            _ => self.range(1, max),
        };
        if d <= max {
            return d;
        }
        let fits: Vec<usize> = [1, 2, 3, 7, 13, 31]
            .into_iter()
            .filter(|&d| d <= max)
            .collect();
        if self.coin() {
            self.range(1, max)
        } else {
            self.pick(&fits)
        }
    }
}
