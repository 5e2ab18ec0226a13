//! The reference workloads of PEERS.md (W1–W9), compiled by dlc and timed with
//! criterion, one thread and two. Run: `cargo bench --bench workloads [-- FILTER]`.
//! Results and the peer figures are recorded in BENCHMARKS.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dlc::{Env, Model, Options};

/// One workload: its id, model text, and the work per run for throughput reports.
struct Workload {
    id: &'static str,
    source: String,
    flops: Option<u64>,
}

fn gemm(id: &'static str, m: usize, n: usize, k: usize) -> Workload {
    Workload {
        id,
        source: format!(
            "model gemm {{\n  input a: f32[{m}, {k}]\n  input b: f32[{k}, {n}]\n  c = a @ b\n  output c\n}}\n"
        ),
        flops: Some(2 * (m * n * k) as u64),
    }
}

/// A conv2d workload: input `[n, c, hw, hw]`, `k` filters of `ks`x`ks`.
fn conv(id: &'static str, [n, c, hw]: [usize; 3], [k, ks, pad, stride]: [usize; 4]) -> Workload {
    let o = (hw + 2 * pad - ks) / stride + 1;
    Workload {
        id,
        source: format!(
            "model conv {{\n  input x: f32[{n}, {c}, {hw}, {hw}]\n  param w: f32[{k}, {c}, {ks}, {ks}] = he_normal\n  y = conv2d(x, w, stride={stride}, padding={pad})\n  output y\n}}\n"
        ),
        flops: Some(2 * (n * k * o * o * c * ks * ks) as u64),
    }
}

fn workloads() -> Vec<Workload> {
    let mut w = vec![
        gemm("W1a", 64, 64, 64),
        gemm("W1b", 256, 256, 256),
        gemm("W1c", 1024, 1024, 1024),
        gemm("W1d", 1, 1024, 1024),
        gemm("W1e", 32, 4096, 1024),
        conv("W2a", [1, 64, 56], [64, 3, 1, 1]),
        conv("W2b", [64, 1, 28], [6, 5, 0, 1]),
        conv("W2c", [1, 3, 224], [64, 7, 3, 2]),
        Workload {
            id: "W2d",
            source: "model pool {\n  input x: f32[1, 64, 56, 56]\n  y = max_pool2d(x, kernel=2)\n  output y\n}\n".into(),
            flops: None,
        },
    ];
    let rnn = |id, cell: &str| Workload {
        id,
        source: {
            let (g, c0, extra) = if cell == "lstm" {
                (4, "  input c0: f32[1, 256]\n", "c0, ")
            } else {
                (3, "", "")
            };
            let outs = if cell == "lstm" { "y, hn, cn" } else { "y, hn" };
            format!(
                "model seq {{\n  input x: f32[50, 1, 128]\n  input h0: f32[1, 256]\n{c0}  param wi: f32[{gh}, 128] = glorot_uniform\n  param wh: f32[{gh}, 256] = glorot_uniform\n  param bi: f32[{gh}] = zeros\n  param bh: f32[{gh}] = zeros\n  {outs} = {cell}(x, h0, {extra}wi, wh, bi, bh)\n  output y\n}}\n",
                gh = g * 256
            )
        },
        flops: None,
    };
    w.push(rnn("W3a", "lstm"));
    w.push(Workload {
        id: "W3b",
        source: rnn("W3b", "lstm")
            .source
            .replace("[50, 1, 128]", "[50, 32, 128]")
            .replace("[1, 256]", "[32, 256]"),
        flops: None,
    });
    w.push(rnn("W3c", "gru"));
    w.extend([
        Workload {
            id: "W5a",
            source: "model ew {\n  input x: f32[4194304]\n  input a: f32[4194304]\n  input b: f32[4194304]\n  y = gelu_tanh(x * a + b)\n  output y\n}\n".into(),
            flops: None,
        },
        Workload {
            id: "W5b",
            source: "model sm {\n  input x: f32[1024, 1024]\n  y = softmax(x, axis=-1)\n  output y\n}\n".into(),
            flops: None,
        },
        Workload {
            id: "W5c",
            source: "model ln {\n  input x: f32[4096, 1024]\n  param g: f32[1024] = ones\n  param b: f32[1024] = zeros\n  y = layernorm(x, g, b)\n  output y\n}\n".into(),
            flops: None,
        },
        Workload {
            id: "W6",
            source: "model attn {\n  input q: f32[1, 512, 64]\n  input k: f32[1, 512, 64]\n  input v: f32[1, 512, 64]\n  o = attention(q, k, v)\n  output o\n}\n".into(),
            flops: Some(4 * 512 * 512 * 64),
        },
        Workload {
            id: "W7",
            source: "model mlp {\n  input x: f32[1, 784]\n  param w1: f32[784, 128] = glorot_uniform\n  param b1: f32[128] = zeros\n  param w2: f32[128, 10] = glorot_uniform\n  param b2: f32[10] = zeros\n  y = relu(x @ w1 + b1) @ w2 + b2\n  output y\n}\n".into(),
            flops: Some(2 * (784 * 128 + 128 * 10)),
        },
        Workload {
            id: "W9",
            source: std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ir/lenet5.ir"))
                .expect("ir/lenet5.ir")
                .replace("dim    B = 16", "dim    B = 64"),
            flops: None,
        },
    ]);
    w
}

fn bench(c: &mut Criterion) {
    for w in workloads() {
        let model = Model::from_source(w.id, &w.source).expect("workload parses");
        let mut group = c.benchmark_group(w.id);
        group.sample_size(20);
        if let Some(f) = w.flops {
            group.throughput(Throughput::Elements(f));
        }
        for threads in [1, 2] {
            let exe = model
                .compile(&Options::default().threads(threads))
                .expect("workload compiles");
            let inputs: Env = exe.random_inputs(1);
            let compiled = exe.compiled().expect("JIT");
            let mut session = compiled.session();
            group.bench_function(BenchmarkId::new("dlc", format!("{threads}t")), |b| {
                b.iter(|| {
                    session.run(&inputs).expect("workload runs");
                })
            });
        }
        group.finish();
    }
}

/// Compile time of the W3a LSTM (W8b): parse, elaborate and JIT-compile.
fn compile_time(c: &mut Criterion) {
    let lstm = workloads()
        .into_iter()
        .find(|w| w.id == "W3a")
        .expect("W3a");
    let mut group = c.benchmark_group("W8b");
    group.sample_size(20);
    group.bench_function("dlc compile", |b| {
        b.iter(|| {
            Model::from_source("W3a", &lstm.source)
                .and_then(|m| m.compile(&Options::default()))
                .expect("compiles")
        })
    });
    group.finish();
}

criterion_group!(benches, bench, compile_time);
criterion_main!(benches);
