//! Property tests: no input makes parse, elaborate or format panic, and the
//! formatter is idempotent and meaning-preserving on whatever parses.

use dlc_ir::syntax::{self, Dims};
use proptest::prelude::*;

/// Runs every entry point on `src`; checks the formatter's laws when it parses.
fn exercise(src: &str) {
    let dims = Dims::from([("B".to_string(), 2), ("N".to_string(), 3)]);
    let parsed = syntax::parse(src);
    let graph = syntax::parse_graph(src, &dims);
    if let Err(d) = &graph {
        let _ = d.render("fuzz.ir", src);
    }
    match syntax::format(src) {
        Ok(f) => {
            assert!(parsed.is_ok());
            let again = syntax::format(&f)
                .unwrap_or_else(|d| panic!("formatted text does not parse:\n{f}\n{d}"));
            assert_eq!(again, f, "format is not idempotent on\n{src}");
            let g2 = syntax::parse_graph(&f, &dims);
            match (&graph, &g2) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "format changed the graph of\n{src}"),
                (Err(_), Err(_)) => {}
                _ => panic!("format changed whether\n{src}\nelaborates"),
            }
            if let Ok(g) = &graph {
                let text = syntax::print(g);
                assert_eq!(&syntax::parse_graph(&text, &Dims::new()).unwrap(), g);
            }
        }
        Err(_) => assert!(parsed.is_err()),
    }
}

const TOKENS: &[&str] = &[
    "model",
    "m",
    "{",
    "}",
    "\n",
    "\n",
    "\n",
    "dim",
    "input",
    "param",
    "const",
    "output",
    "B",
    "N",
    "x",
    "y",
    "w",
    "h",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "@",
    "**",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "f32",
    "i64",
    "bool",
    "1",
    "2",
    "3",
    "0",
    "-1",
    "0.5",
    "1e-5",
    "1e999",
    "99999999999999999999",
    "inf",
    "nan",
    "true",
    "false",
    "\"same\"",
    "\"tanh\"",
    "# c\n",
    "relu",
    "softmax",
    "axis",
    "matmul",
    "lstm",
    "conv2d",
    "reshape",
    "shape",
    "slice",
    "start",
    "sum",
    "zeros",
    "normal",
    "glorot_uniform",
    "cross_entropy",
    "`q x`",
    "$",
    "\"",
    "`",
    "é",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.join(" "))
}

/// Small well-formed models, to reach elaboration and the formatter often.
fn model_ish() -> impl Strategy<Value = String> {
    let stmt = prop::sample::select(vec![
        "  y = relu(x)",
        "  z = x @ w + 1",
        "  s = softmax(x, axis=-1)",
        "  r = reshape(x, shape=[B, -1])",
        "  t = sum(x * 0.5, keepdim=true)  # half",
        "  # a comment",
        "",
        "  c = slice(x, axis=1, start=-2)",
        "  output y",
        "  q = (x - 1) ** 2 / N",
        "  const k: f32[2] = [1, 2.5]",
        "  param p: f32[N] = normal(0, 0.1)",
        "  u = concat(x, x, axis=0)",
    ]);
    prop::collection::vec(stmt, 0..8).prop_map(|s| {
        format!(
            "# header\nmodel m {{\n  dim B = 2\n  input x: f32[B, N]\n  input w: f32[N, 4]\n{}\n}}\n",
            s.join("\n")
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soups_never_panic(src in soup()) {
        exercise(&src);
        exercise(&format!("model m {{\n{src}\n}}\n"));
    }

    #[test]
    fn well_formed_models_format_idempotently(src in model_ish()) {
        exercise(&src);
    }

    #[test]
    fn mutated_examples_never_panic(which in 0usize..12, cut in any::<prop::sample::Index>(), len in 0usize..20, ins in prop::sample::select(TOKENS)) {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ir");
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let src = std::fs::read_to_string(&files[which % files.len()]).unwrap();
        let at = cut.index(src.len());
        let at = (0..=at).rev().find(|&i| src.is_char_boundary(i)).unwrap_or(0);
        let end = (at + len).min(src.len());
        let end = (end..=src.len()).find(|&i| src.is_char_boundary(i)).unwrap_or(src.len());
        exercise(&format!("{}{}{}", &src[..at], ins, &src[end..]));
    }
}

/// Operands of assorted ranks and dtypes for random calls.
const POOL: &str = "  input s: f32[]\n  input v: f32[4]\n  input m: f32[3, 4]\n  input t: f32[2, 3, 4]\n  input q: f32[1, 2, 6, 6]\n  input i: i64[3]\n  input k: bool[3, 4]\n";
const VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "-5",
    "3",
    "100000000000",
    "0.5",
    "-inf",
    "true",
    "false",
    "\"same\"",
    "\"valid\"",
    "\"tanh\"",
    "f32",
    "i64",
    "B",
    "[1, 2]",
    "[0, -1]",
    "[2, 2, 2, 2]",
    "[]",
    "[B, -1]",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Any op of the table, with operands and attributes drawn at random, either
    /// elaborates to a verified graph or reports errors: lowering never panics.
    #[test]
    fn random_calls_never_panic(
        op in prop::sample::select(syntax::table::OPS),
        operands in prop::collection::vec(prop::sample::select(&["s", "v", "m", "t", "q", "i", "k", "1", "0.5"][..]), 0..8),
        attrs in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(VALUES)), 0..4),
    ) {
        let mut args: Vec<String> = operands.iter().map(|s| s.to_string()).collect();
        for (which, value) in attrs {
            if !op.attrs.is_empty() {
                args.push(format!("{}={value}", op.attrs[which.index(op.attrs.len())].name));
            }
        }
        let src = format!("model m {{\n  dim B = 2\n{POOL}  y = {}({})\n}}\n", op.name, args.join(", "));
        exercise(&src);
        if let Ok(g) = syntax::parse_graph(&src, &Dims::new()) {
            dlc_ir::verify(&g).unwrap();
        }
    }
}
