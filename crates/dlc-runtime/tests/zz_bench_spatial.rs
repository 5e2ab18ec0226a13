//! Local timing harness (not committed). Run with --release --nocapture.
use dlc_runtime::{CompiledModel, RuntimeOptions, Threading};
use std::time::Instant;

fn time(name: &str, src: &str, flops: f64) {
    let g = dlc_ir::syntax::parse_graph(src, &Default::default()).unwrap();
    let (inputs, params) = dlc_testgen::random_values(&g, 1);
    let mut opts = RuntimeOptions::default();
    let threads: usize = std::env::var("THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    opts.threading = Threading { threads, ..Threading::single() };
    let t = Instant::now();
    let m = CompiledModel::new(&g, &params, &opts).unwrap();
    let compile = t.elapsed().as_secs_f64();
    let mut s = m.session();
    for _ in 0..3 { s.run(&inputs).unwrap(); }
    let mut ts = vec![];
    for _ in 0..40 {
        let t = Instant::now();
        s.run(&inputs).unwrap();
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = ts[ts.len() / 2];
    println!("{name}: median {:.4} ms  min {:.4} ms  {:.1} GFLOP/s  (compile {:.1} ms)", med * 1e3, ts[0] * 1e3, flops / med / 1e9, compile * 1e3);
}

fn conv(name: &str, n: usize, c: usize, hw: usize, k: usize, ks: usize, pad: usize, stride: usize) {
    let o = (hw + 2 * pad - ks) / stride + 1;
    let src = format!("model conv {{\n  input x: f32[{n}, {c}, {hw}, {hw}]\n  param w: f32[{k}, {c}, {ks}, {ks}] = he_normal\n  y = conv2d(x, w, stride={stride}, padding={pad})\n  output y\n}}\n");
    time(name, &src, 2.0 * (n * k * o * o * c * ks * ks) as f64);
}

#[test]
fn bench() {
    let filter = std::env::var("W").unwrap_or_default();
    if "W2b".contains(&filter) { conv("W2b", 64, 1, 28, 6, 5, 0, 1); }
    if "W2d".contains(&filter) { time("W2d", "model pool {\n  input x: f32[1, 64, 56, 56]\n  y = max_pool2d(x, kernel=2)\n  output y\n}\n", 0.0); }
    if "W2a".contains(&filter) { conv("W2a", 1, 64, 56, 64, 3, 1, 1); }
    if "W2c".contains(&filter) { conv("W2c", 1, 3, 224, 64, 7, 3, 2); }
    if "Wdw".contains(&filter) { time("dw3x3 1x64x56x56", "model dw {\n  input x: f32[1, 64, 56, 56]\n  param w: f32[64, 1, 3, 3] = he_normal\n  y = conv2d(x, w, padding=1, groups=64)\n  output y\n}\n", 2.0*64.0*56.0*56.0*9.0); }
    if "Wct".contains(&filter) { time("convT 1x64x28x28->32 k4s2p1", "model ct {\n  input x: f32[1, 64, 28, 28]\n  param w: f32[64, 32, 4, 4] = he_normal\n  y = conv_transpose2d(x, w, stride=2, padding=1)\n  output y\n}\n", 2.0*64.0*28.0*28.0*32.0*16.0); }
    if "Wap".contains(&filter) { time("avgpool3x3s1p1 1x64x56x56", "model ap {\n  input x: f32[1, 64, 56, 56]\n  y = avg_pool2d(x, kernel=3, stride=1, padding=1)\n  output y\n}\n", 0.0); }
}
