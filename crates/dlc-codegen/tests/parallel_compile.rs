//! Kernels compile in parallel on the rayon pool: the machine code must not
//! depend on how many threads compiled it or in which order they finished.

use dlc_codegen::{CodegenOptions, Program, compile};

/// Packed GEMMs of several shapes (edge panels in A and B, a transposed
/// operand) around elementwise, softmax and reduction kernels.
const MODEL: &str = "model m {
  input x: f32[37, 300]
  param w1: f32[300, 70] = glorot_uniform
  param b1: f32[70] = zeros
  param w2: f32[70, 29] = glorot_uniform
  h = relu(x @ w1 + b1)
  g = transpose(x) @ h
  y = softmax(h @ w2)
  s = sum(g)
  output y
  output s
}";

/// Compiles `MODEL` on a rayon pool of `threads` threads, keeping the listings.
fn compile_on(threads: usize) -> Program {
    let g = dlc_ir::syntax::parse_graph(MODEL, &Default::default()).expect("parses");
    let opts = CodegenOptions {
        dump_asm: true,
        ..CodegenOptions::default()
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(|| compile(&g, &opts))
        .expect("compiles")
}

/// The machine-code listing and size of every kernel, in kernel order.
fn listings(p: &Program) -> Vec<(String, usize, String)> {
    p.lowered
        .kernels
        .iter()
        .zip(&p.code.dumps)
        .map(|(k, d)| {
            let asm = d.asm.clone().expect("listing kept");
            (k.name.clone(), d.code_bytes, asm)
        })
        .collect()
}

#[test]
fn code_is_the_same_on_one_thread_and_two() {
    let serial = listings(&compile_on(1));
    assert!(
        serial.len() >= 5 && serial.iter().filter(|k| k.0.contains("matmul")).count() >= 3,
        "the model should give several kernels, three of them products: {:?}",
        serial.iter().map(|k| &k.0).collect::<Vec<_>>()
    );
    for _ in 0..3 {
        let parallel = listings(&compile_on(2));
        assert_eq!(serial.len(), parallel.len());
        for (s, p) in serial.iter().zip(&parallel) {
            assert_eq!(s, p, "kernel {} differs between 1 and 2 threads", s.0);
        }
    }
}
