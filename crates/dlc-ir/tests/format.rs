//! The formatter: canonical layout, comments kept, idempotent.

use dlc_ir::syntax::{self, Dims};

const MESSY: &str = "# header comment

model   m{   # on the model line
dim B=2
    input x :f32[ B,3 ]   # the input
  # about w
  param w:f32[3,4]=normal( 0 , 0.02 )
  param bias : f32[4] = zeros



  h=relu( x@w+bias )  # hidden
  ys,hn   =  rnn_ish_is_not_needed_here( ),h
}
# footer
";

#[test]
fn formats_to_canonical_layout() {
    let src = MESSY.replace(
        "  ys,hn   =  rnn_ish_is_not_needed_here( ),h\n",
        "  y = softmax(\n      h,   # multi-line\n      axis = -1)\n  output y , logits=h\n",
    );
    let f = syntax::format(&src).unwrap_or_else(|d| panic!("{}", d.render("m.ir", &src)));
    let want = "# header comment
model m {  # on the model line
  dim    B = 2
  input  x: f32[B, 3]  # the input
  # about w
  param  w: f32[3, 4] = normal(0, 0.02)
  param  bias: f32[4] = zeros

  h      = relu(x @ w + bias)   # hidden
  y      = softmax(h, axis=-1)  # multi-line
  output y, logits = h
}
# footer
";
    assert_eq!(f, want);
    assert_eq!(syntax::format(&f).unwrap(), f);
    let dims = Dims::new();
    assert_eq!(
        syntax::parse_graph(&f, &dims).unwrap(),
        syntax::parse_graph(&src, &dims).unwrap()
    );
}

#[test]
fn keeps_infix_named_dims_literals_and_parentheses_as_written() {
    let src = "model m {\n  dim N = 3\n  input x: f32[N]\n  y = -(x ** 2) * 1e-3 + (x - -1.50) / 2\n  z = -x ** 2\n  output y, z\n}\n";
    let f = syntax::format(src).unwrap();
    assert!(
        f.contains("y      = -(x ** 2) * 1e-3 + (x - -1.50) / 2"),
        "{f}"
    );
    assert!(f.contains("z      = -x ** 2"), "{f}");
    assert!(f.contains("input  x: f32[N]"), "{f}");
}

#[test]
fn format_reports_parse_errors() {
    let e = syntax::format("model m {\n  y = (\n}\n").unwrap_err();
    assert!(!e.is_empty());
}
