//! Every model in `ir/` parses and elaborates with its default dims, formats
//! idempotently to a model with the same graph, and prints canonically.

use std::path::PathBuf;

use dlc_ir::syntax::{self, Dims};

fn ir_files() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ir");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("ir/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ir"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "expected the example models, found {}",
        files.len()
    );
    files
}

fn graph(name: &str, src: &str) -> dlc_ir::Graph {
    match syntax::parse_graph(src, &Dims::new()) {
        Ok(g) => g,
        Err(d) => panic!("{}", d.render(name, src)),
    }
}

#[test]
fn examples_elaborate_and_verify() {
    for (name, src) in ir_files() {
        let g = graph(&name, &src);
        dlc_ir::verify(&g).unwrap();
        assert!(!g.outputs().is_empty(), "{name} has no outputs");
        assert_eq!(
            format!("{}.ir", g.name),
            name,
            "model name should match the file name"
        );
    }
}

#[test]
fn examples_format_idempotently_to_the_same_graph() {
    for (name, src) in ir_files() {
        let f = syntax::format(&src).unwrap_or_else(|d| panic!("{}", d.render(&name, &src)));
        assert_eq!(
            syntax::format(&f).unwrap(),
            f,
            "format is not idempotent on {name}"
        );
        assert_eq!(
            graph(&name, &f),
            graph(&name, &src),
            "format changed {name}"
        );
        // Comments survive.
        let comments = |s: &str| s.matches('#').count();
        assert_eq!(comments(&f), comments(&src), "{name} lost comments");
    }
}

#[test]
fn examples_are_already_formatted() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ir");
    for (name, src) in ir_files() {
        let f = syntax::format(&src).unwrap();
        if std::env::var_os("DLC_FMT_WRITE").is_some() {
            std::fs::write(dir.join(&name), &f).unwrap();
            continue;
        }
        assert_eq!(
            f, src,
            "{name} is not in `dlc fmt` form (DLC_FMT_WRITE=1 rewrites)"
        );
    }
}

#[test]
fn examples_print_and_reparse_to_the_same_graph() {
    for (name, src) in ir_files() {
        let g = graph(&name, &src);
        let text = syntax::print(&g);
        assert_eq!(
            graph(&name, &text),
            g,
            "print/parse changed {name}:\n{text}"
        );
        assert_eq!(syntax::print(&graph(&name, &text)), text);
    }
}

#[test]
fn named_dims_rebind() {
    let (_, src) = ir_files().into_iter().find(|(n, _)| n == "mlp.ir").unwrap();
    let dims = Dims::from([("B".to_string(), 64)]);
    let g = syntax::parse_graph(&src, &dims).unwrap();
    let x = g.lookup("x").unwrap();
    assert_eq!(g.ty(x).shape, vec![64, 784]);
    let m = syntax::parse(&src).unwrap();
    assert_eq!(m.declared_dims()[0].default, Some(32));
    assert!(m.dim_names().is_empty());
}
