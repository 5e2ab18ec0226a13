//! Parameter initialisers and the deterministic random stream behind them.
//!
//! The stream is a SplitMix64 generator (Steele, Lea & Flood, 2014): tiny, fast,
//! statistically sound for initialisation, and fixed forever, so a model file and a
//! seed always give the same parameters on every machine and every dlc version.

/// How a parameter is initialised when no value is loaded for it.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Every element equal to the value.
    Constant(f64),
    /// Normal distribution.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Uniform distribution on `[lo, hi)`.
    Uniform {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// Glorot/Xavier uniform: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform,
    /// Glorot/Xavier normal: `N(0, sqrt(2 / (fan_in + fan_out)))`.
    GlorotNormal,
    /// He/Kaiming normal: `N(0, sqrt(2 / fan_in))`.
    HeNormal,
}

impl Init {
    /// The initialiser's name in `.ir` text.
    pub fn name(&self) -> &'static str {
        match self {
            Init::Zeros => "zeros",
            Init::Ones => "ones",
            Init::Constant(_) => "constant",
            Init::Normal { .. } => "normal",
            Init::Uniform { .. } => "uniform",
            Init::GlorotUniform => "glorot_uniform",
            Init::GlorotNormal => "glorot_normal",
            Init::HeNormal => "he_normal",
        }
    }

    /// The initialiser's positional arguments as written in `.ir` text.
    pub fn args(&self) -> Vec<f64> {
        match *self {
            Init::Constant(v) => vec![v],
            Init::Normal { mean, std } => vec![mean, std],
            Init::Uniform { lo, hi } => vec![lo, hi],
            _ => vec![],
        }
    }

    /// Builds an initialiser from its name and positional arguments.
    ///
    /// Returns an error message naming the expected arguments when they do not fit.
    pub fn from_call(name: &str, args: &[f64]) -> Result<Init, String> {
        let want = |n: usize, sig: &str| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "initialiser `{name}` takes {n} argument(s): {sig}, got {}",
                    args.len()
                ))
            }
        };
        let init = match name {
            "zeros" => want(0, "zeros").map(|_| Init::Zeros)?,
            "ones" => want(0, "ones").map(|_| Init::Ones)?,
            "constant" => want(1, "constant(value)").map(|_| Init::Constant(args[0]))?,
            "normal" => want(2, "normal(mean, std)").map(|_| Init::Normal {
                mean: args[0],
                std: args[1],
            })?,
            "uniform" => want(2, "uniform(lo, hi)").map(|_| Init::Uniform {
                lo: args[0],
                hi: args[1],
            })?,
            "glorot_uniform" => want(0, "glorot_uniform").map(|_| Init::GlorotUniform)?,
            "glorot_normal" => want(0, "glorot_normal").map(|_| Init::GlorotNormal)?,
            "he_normal" => want(0, "he_normal").map(|_| Init::HeNormal)?,
            _ => {
                return Err(format!(
                    "unknown initialiser `{name}`; expected one of zeros, ones, constant(v), \
                     normal(mean, std), uniform(lo, hi), glorot_uniform, glorot_normal, he_normal"
                ));
            }
        };
        if args.iter().any(|a| !a.is_finite()) {
            return Err(format!("initialiser `{name}` needs finite arguments"));
        }
        match init {
            Init::Normal { std, .. } if std < 0.0 => {
                Err("normal(mean, std) needs std >= 0".to_string())
            }
            Init::Uniform { lo, hi } if lo > hi => {
                Err("uniform(lo, hi) needs lo <= hi".to_string())
            }
            init => Ok(init),
        }
    }

    /// Produces the parameter's values (row-major) for a shape and a seed.
    pub fn materialize(&self, shape: &[usize], seed: u64) -> Vec<f64> {
        let n: usize = shape.iter().product();
        let mut rng = SplitMix64::new(seed);
        let (fan_in, fan_out) = fans(shape);
        match *self {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Constant(v) => vec![v; n],
            Init::Normal { mean, std } => (0..n).map(|_| mean + std * rng.normal()).collect(),
            Init::Uniform { lo, hi } => (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect(),
            Init::GlorotUniform => {
                let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
                (0..n).map(|_| -a + 2.0 * a * rng.uniform()).collect()
            }
            Init::GlorotNormal => {
                let s = (2.0 / (fan_in + fan_out) as f64).sqrt();
                (0..n).map(|_| s * rng.normal()).collect()
            }
            Init::HeNormal => {
                let s = (2.0 / fan_in as f64).sqrt();
                (0..n).map(|_| s * rng.normal()).collect()
            }
        }
    }
}

/// Fan-in and fan-out of a weight shape.
///
/// Rank 2 is `[in, out]` (dlc's `x @ w` convention); rank >= 3 is a convolution
/// kernel `[O, I, *k]`; rank 0/1 uses the length for both.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [i, o] => (*i, *o),
        [o, i, k @ ..] => {
            let field: usize = k.iter().product();
            (i * field, o * field)
        }
    }
}

/// Derives a per-parameter seed from a model seed and the parameter's name (FNV-1a).
pub fn param_seed(model_seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ model_seed;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64: the fixed random stream behind initialisers and generated inputs.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller; one value per call).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The SplitMix64 output function: a bijective 64-bit mixer.
///
/// Also the hash behind dropout masks, so every backend draws the same mask.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether dropout keeps element `index` under `seed` when dropping with probability `p`.
///
/// The decision hashes `(seed, index)` with [`mix64`] and compares 24 random bits
/// (exact in f32) against `p`, so the interpreter and the JIT draw identical masks.
pub fn dropout_keep(seed: u64, index: u64, p: f32) -> bool {
    let h = mix64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index.wrapping_add(1));
    let u = (h >> 40) as f32 * (1.0 / (1u32 << 24) as f32);
    u >= p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialisers_are_deterministic_and_scaled() {
        let a = Init::GlorotUniform.materialize(&[64, 32], 7);
        assert_eq!(a, Init::GlorotUniform.materialize(&[64, 32], 7));
        let bound = (6.0f64 / 96.0).sqrt();
        assert!(a.iter().all(|x| x.abs() <= bound));
        let n = Init::Normal {
            mean: 1.0,
            std: 2.0,
        }
        .materialize(&[20000], 1);
        let mean = n.iter().sum::<f64>() / n.len() as f64;
        let var = n.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "std {}", var.sqrt());
    }

    #[test]
    fn bad_initialiser_calls_are_rejected() {
        assert!(Init::from_call("normal", &[0.0]).is_err());
        assert!(Init::from_call("uniform", &[1.0, 0.0]).is_err());
        assert!(Init::from_call("gaussian", &[]).is_err());
        assert_eq!(Init::from_call("constant", &[2.5]), Ok(Init::Constant(2.5)));
    }

    #[test]
    fn dropout_mask_has_the_right_rate() {
        let kept = (0..100_000).filter(|&i| dropout_keep(42, i, 0.3)).count();
        assert!((kept as f64 / 1e5 - 0.7).abs() < 0.01, "{kept}");
        assert!((0..1000).all(|i| dropout_keep(1, i, 0.0)));
    }

    #[test]
    fn fans_follow_layout_conventions() {
        assert_eq!(fans(&[784, 128]), (784, 128));
        assert_eq!(fans(&[16, 6, 5, 5]), (150, 400));
    }
}
