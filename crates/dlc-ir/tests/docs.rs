//! docs/ir.md stays accurate: its op reference is the table the parser uses,
//! and every example in it elaborates.

use dlc_ir::syntax::{self, Dims, table};

fn doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ir.md");
    std::fs::read_to_string(path).expect("docs/ir.md exists")
}

#[test]
fn op_reference_matches_the_op_table() {
    let want = table::reference_markdown();
    if std::env::var_os("DLC_DOCS_WRITE").is_some() {
        let d = doc();
        let (a, rest) = d.split_once("<!-- ops:begin -->\n").unwrap();
        let (_, b) = rest.split_once("<!-- ops:end -->").unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ir.md");
        std::fs::write(
            path,
            format!("{a}<!-- ops:begin -->\n{want}<!-- ops:end -->{b}"),
        )
        .unwrap();
        return;
    }
    assert!(
        doc().contains(&format!("<!-- ops:begin -->\n{want}<!-- ops:end -->")),
        "docs/ir.md's op table is stale; rerun this test with DLC_DOCS_WRITE=1"
    );
}

#[test]
fn every_op_example_parses() {
    for op in table::OPS {
        let stmt = syntax::parse(&format!("model m {{\n  {}\n}}\n", op.example));
        assert!(
            stmt.is_ok(),
            "example of `{}` does not parse: {}",
            op.name,
            op.example
        );
    }
}

#[test]
fn ir_code_blocks_in_the_docs_elaborate() {
    let d = doc();
    let mut n = 0;
    for block in d.split("```ir\n").skip(1) {
        let code = block.split("```").next().unwrap();
        if code.contains("model ") {
            syntax::parse_graph(code, &Dims::new())
                .unwrap_or_else(|e| panic!("{}", e.render("docs", code)));
            n += 1;
        }
    }
    assert!(n >= 2);
}
