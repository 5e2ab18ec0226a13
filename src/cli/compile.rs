//! `dlc compile`: compile a model and report kernels, memory and time per phase.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use dlc::{Backend, Error, Model};

use super::{ExecArgs, ModelArgs};

/// What `--emit` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The elaborated graph as canonical `.ir` text.
    Graph,
    /// The kernel list with their parameters.
    Kernels,
    /// Cranelift IR of every kernel.
    Clif,
    /// Machine code listing of every kernel.
    Asm,
}

/// Arguments of `dlc compile`.
#[derive(Args, Debug)]
pub struct CompileArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Also print a stage's output (repeatable).
    #[arg(long, value_enum)]
    emit: Vec<Emit>,
    /// Explain the optimiser's work: rules fired, rules that changed the graph,
    /// the stop reason and the estimated cost before and after.
    #[arg(long)]
    explain: bool,
}

fn ms(secs: f64) -> String {
    format!("{:.2} ms", secs * 1e3)
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// Runs `dlc compile`.
pub fn run(a: &CompileArgs) -> Result<ExitCode, Error> {
    let t = Instant::now();
    let model = a.model.load()?;
    let parse = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let graph = model.graph(&a.model.dims())?;
    let elaborate = t.elapsed().as_secs_f64();
    let mut opts = a.exec.options(a.model.dims())?;
    opts.backend = Backend::Jit;
    opts.runtime.codegen.dump_clif = a.emit.contains(&Emit::Clif);
    opts.runtime.codegen.dump_asm = a.emit.contains(&Emit::Asm);
    let exe = dlc::Executable::new(graph, &opts)?;
    if a.emit.contains(&Emit::Graph) {
        print!("{}", dlc::ir::syntax::print(exe.graph()));
    }
    if a.explain {
        print!("{}", exe.opt_report());
    }
    let compiled = exe.compiled().expect("the JIT backend was chosen");
    let p = compiled.program();
    let low = &p.lowered;
    if a.emit.contains(&Emit::Kernels) {
        for (k, d) in low.kernels.iter().zip(&p.code.dumps) {
            let names = |bufs: &[dlc_codegen::BufId]| {
                bufs.iter()
                    .map(|b| low.buffers[b.index()].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "{}  ({}) -> {}  [{} bytes, compiled in {:.2} ms]",
                k.name,
                names(&k.inputs),
                names(&k.outputs),
                d.code_bytes,
                d.compile_secs * 1e3
            );
            println!("    {:?}", k.op);
        }
    }
    for (k, d) in low.kernels.iter().zip(&p.code.dumps) {
        if let Some(clif) = &d.clif {
            println!(";; {}\n{clif}", k.name);
        }
        if let Some(asm) = &d.asm {
            println!(";; {} ({} bytes)\n{asm}", k.name, d.code_bytes);
        }
    }
    report(&model, &exe, parse, elaborate);
    Ok(ExitCode::SUCCESS)
}

fn report(model: &Model, exe: &dlc::Executable, parse: f64, elaborate: f64) {
    let p = exe.compiled().expect("JIT").program();
    let low = &p.lowered;
    let fused = low.kernels.iter().filter(|k| k.nodes.len() > 1).count();
    let nodes: usize = low.kernels.iter().map(|k| k.nodes.len()).sum();
    let flops: f64 = low.kernels.iter().map(|k| k.flops).sum();
    let code: usize = p.code.dumps.iter().map(|d| d.code_bytes).sum();
    let params: usize = low
        .buffers
        .iter()
        .filter(|b| {
            matches!(
                b.kind,
                dlc_codegen::BufferKind::Param(_) | dlc_codegen::BufferKind::Const(_)
            )
        })
        .map(|b| b.bytes())
        .sum();
    println!(
        "model {}: {} nodes -> {} kernels ({fused} fused groups covering {nodes} ops)",
        model.name(),
        exe.graph().len(),
        low.kernels.len()
    );
    println!("  work       {:.3} MFLOP per run", flops / 1e6);
    println!(
        "  memory     arena {} (peak of the plan; {} without reuse, {} in-place), parameters {}",
        kib(p.plan.arena_bytes),
        kib(p.plan.unshared_bytes),
        p.plan.in_place,
        kib(params)
    );
    println!("  code       {} of machine code", kib(code));
    let t = p.times;
    let optimise = exe.opt_report().total.as_secs_f64();
    let total = parse + elaborate + optimise + t.verify + t.lower + t.plan + t.build + t.compile;
    println!(
        "  time       parse {}, elaborate {}, optimise {}, verify {}, lower {}, plan {}, build IR {}, Cranelift {}; total {}",
        ms(parse),
        ms(elaborate),
        ms(optimise),
        ms(t.verify),
        ms(t.lower),
        ms(t.plan),
        ms(t.build),
        ms(t.compile),
        ms(total)
    );
}
