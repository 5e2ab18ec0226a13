use dlc_runtime::{CompiledModel, RuntimeOptions};
#[test]
fn dump() {
    let src = std::fs::read_to_string("/work/scratch/debug.ir").unwrap();
    let g = dlc_ir::syntax::parse_graph(&src, &Default::default()).unwrap();
    let mut opts = RuntimeOptions::default();
    opts.codegen.dump_clif = std::env::var("CLIF").is_ok();
    opts.codegen.dump_asm = std::env::var("ASM").is_ok();
    let (inputs, params) = dlc_testgen::random_values(&g, 1);
    let m = CompiledModel::new(&g, &params, &opts).unwrap();
    for (k, d) in m.program().lowered.kernels.iter().zip(&m.program().code.dumps) {
        println!("{k:?}\n{}\n{}", d.clif.as_deref().unwrap_or(""), d.asm.as_deref().unwrap_or(""));
    }
    let got = m.run(&inputs).unwrap();
    let want = dlc_interp::run::<f32>(&g, &inputs, &params).unwrap();
    for o in g.outputs() {
        println!("got  {:?}\nwant {:?}", got[&o.name], want[&o.name]);
    }
}
