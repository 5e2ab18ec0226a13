//! Every error kind: its message, its place (`file:line:col` in the rendering)
//! and its help notes. None of them panics.

use dlc_ir::syntax::{self, Diagnostics, Dims};

fn model(body: &str) -> String {
    format!("model m {{\n{body}}}\n")
}

/// Elaborates `src`, expecting failure; returns the diagnostics and their rendering.
fn fail(src: &str) -> (Diagnostics, String) {
    fail_with(src, &Dims::new())
}

fn fail_with(src: &str, dims: &Dims) -> (Diagnostics, String) {
    match syntax::parse_graph(src, dims) {
        Ok(g) => panic!("expected an error, got\n{}", syntax::print(&g)),
        Err(d) => {
            let r = d.render("t.ir", src);
            assert!(!r.contains('\u{1b}'), "rendering has colour codes");
            (d, r)
        }
    }
}

/// Asserts one diagnostic has `msg` in its message and renders at `line:col`.
fn expect(src: &str, msg: &str, line_col: &str) -> Diagnostics {
    let (d, r) = fail(src);
    let hit = d.iter().find(|x| x.message.contains(msg));
    let Some(hit) = hit else {
        panic!("no diagnostic contains {msg:?}:\n{r}")
    };
    let alone = hit.render("t.ir", src);
    assert!(
        alone.contains(&format!("t.ir:{line_col} ]")),
        "want {line_col}:\n{alone}"
    );
    d
}

fn notes(d: &Diagnostics) -> String {
    d.iter()
        .flat_map(|x| x.notes.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn syntax_error_names_expected_and_found() {
    let src = model("  input x: f32[2, 3]\n  y = relu(x +)\n");
    let d = expect(&src, "expected an expression, found `)`", "3:15");
    let r = d.render("t.ir", &src);
    assert!(r.contains("  y = relu(x +)"), "source line shown:\n{r}");
    assert!(r.contains('┬') || r.contains('^'), "caret shown:\n{r}");
    expect(
        &model("  input x f32[2]\n"),
        "expected `:`, found identifier `f32`",
        "2:11",
    );
    expect(
        &model("  input x: f33[2]\n"),
        "expected a dtype (f32, i64 or bool)",
        "2:12",
    );
    expect(&model("  y = 3 $ 4\n"), "unexpected character `$`", "2:9");
    expect(
        &model("  y = relu(x) relu(x)\n"),
        "expected end of line, found identifier `relu`",
        "2:15",
    );
    expect(
        &model("  input input: f32[2]\n"),
        "expected an input name, found keyword `input`",
        "2:9",
    );
}

#[test]
fn several_errors_are_reported_per_file() {
    let src = model(
        "  input x: f32[2]\n  a = relu(x +)\n  b = (x\n  c = x $ 1\n  d = relu(x)\n  e = * x\n",
    );
    let (d, r) = fail(&src);
    assert!(d.len() >= 4, "{r}");
    let src =
        model("  input x: f32[2]\n  a = rleu(x)\n  b = undefined_thing\n  c = relu(x, bogus=1)\n");
    let (d, r) = fail(&src);
    assert_eq!(d.len(), 3, "{r}");
}

#[test]
fn unknown_op_suggests_a_name() {
    let d = expect(
        &model("  input x: f32[2]\n  y = rleu(x)\n"),
        "unknown op `rleu`",
        "3:7",
    );
    assert!(notes(&d).contains("did you mean `relu`?"), "{}", notes(&d));
    let d = expect(
        &model("  input x: f32[2]\n  y = softmx(x)\n"),
        "unknown op `softmx`",
        "3:7",
    );
    assert!(notes(&d).contains("`softmax`"));
}

#[test]
fn unknown_attribute_lists_valid_ones() {
    let d = expect(
        &model("  input x: f32[2, 3]\n  y = softmax(x, axs=0)\n"),
        "unknown attribute `axs` for `softmax`",
        "3:18",
    );
    let n = notes(&d);
    assert!(
        n.contains("did you mean `axis`?") && n.contains("valid attributes of `softmax`: axis"),
        "{n}"
    );
    let d = expect(
        &model("  input x: f32[2]\n  y = relu(x, alpha=1)\n"),
        "unknown attribute `alpha`",
        "3:15",
    );
    assert!(notes(&d).contains("`relu` takes no attributes"));
    expect(
        &model("  input x: f32[2, 3]\n  y = softmax(x, axis=0, axis=1)\n"),
        "attribute `axis` given twice",
        "3:26",
    );
}

#[test]
fn bad_attribute_values() {
    expect(
        &model("  input x: f32[2, 3]\n  y = softmax(x, axis=\"a\")\n"),
        "bad value for attribute `axis` of `softmax`: expected an integer, found string \"a\"",
        "3:23",
    );
    expect(
        &model("  input x: f32[2, 3]\n  y = softmax(x, axis=2)\n"),
        "axis 2 is out of range for rank 2",
        "3:23",
    );
    expect(
        &model("  input x: f32[2, 3]\n  y = gelu(x, approximate=\"fast\")\n"),
        "expected one of \"none\", \"tanh\"",
        "3:27",
    );
    expect(
        &model("  input x: f32[2, 3]\n  y = cast(x, to=f64)\n"),
        "expected a dtype (f32, i64 or bool), found name `f64`",
        "3:18",
    );
    expect(
        &model("  input x: f32[1, 1, 4, 4]\n  y = max_pool2d(x, kernel=[2, 2, 2])\n"),
        "expected 1 or 2 values (one per spatial dim), got 3",
        "3:28",
    );
    expect(
        &model("  input x: f32[2, 3]\n  y = clamp(x)\n"),
        "`clamp` needs `min`, `max` or both",
        "3:7",
    );
    expect(
        &model("  input x: f32[2, 3]\n  y = cast(x)\n"),
        "`cast` needs the attribute `to`",
        "3:7",
    );
    expect(
        &model(
            "  input x: f32[1, 2, 8]\n  input w: f32[2, 2, 3]\n  y = conv1d(x, w, padding=1, causal=true)\n",
        ),
        "`causal=true` sets the padding itself",
        "4:28",
    );
    expect(
        &model(
            "  input x: f32[1, 2, 8, 8]\n  input w: f32[2, 2, 3, 3]\n  y = conv2d(x, w, stride=2, padding=\"same\")\n",
        ),
        "padding \"same\" needs stride 1",
        "4:38",
    );
    expect(
        &model("  input x: f32[2, 3]\n  y = reshape(x, shape=[4, -1])\n"),
        "cannot reshape [2, 3] (6 elements) to [4, -1]",
        "3:24",
    );
    expect(
        &model("  input x: f32[2, 3]\n  y = slice(x, axis=1, start=2, end=-1)\n"),
        "slice of axis 1 is empty",
        "3:7",
    );
    expect(
        &model("  input x: f32[2, 3]\n  y = dropout(x, seed=-1)\n"),
        "-1 is negative",
        "3:23",
    );
}

#[test]
fn wrong_arity() {
    let d = expect(
        &model("  input x: f32[2]\n  y = relu(x, x)\n"),
        "`relu` takes 1 operand(s), got 2",
        "3:7",
    );
    assert!(notes(&d).contains("operands: x"));
    expect(
        &model("  input x: f32[2]\n  y = concat()\n"),
        "`concat` takes at least 1 operand(s), got 0",
        "3:7",
    );
    expect(
        &model("  input x: f32[2]\n  input w: f32[2, 2]\n  y = linear(x)\n"),
        "`linear` takes 2 to 3 operand(s), got 1",
        "4:7",
    );
}

#[test]
fn undefined_name_suggests() {
    let d = expect(
        &model("  input image: f32[2]\n  y = relu(imag)\n"),
        "undefined name `imag`",
        "3:12",
    );
    assert!(notes(&d).contains("did you mean `image`?"));
    let d = expect(
        &model("  y = relu(x)\n  input x: f32[2]\n"),
        "undefined name `x`",
        "2:12",
    );
    assert!(notes(&d).contains("defined before they are used"));
    expect(
        &model("  input x: f32[2]\n  output x, z\n"),
        "undefined name `z`",
        "3:13",
    );
}

#[test]
fn duplicate_name_points_at_both() {
    let src = model("  input x: f32[2]\n  y = relu(x)\n  y = exp(x)\n");
    let d = expect(&src, "`y` is defined twice", "4:3");
    let first = &d.iter().next().unwrap().related[0];
    assert_eq!(first.1, "first defined here");
    assert_eq!(&src[first.0.range()], "y");
    let r = d.render("t.ir", &src);
    assert!(
        r.contains("first defined here") && r.contains("defined again here"),
        "{r}"
    );
    expect(
        &model("  input x: f32[2]\n  a, a = lstm_cell(x)\n"),
        "`a` is defined twice",
        "3:6",
    );
    expect(
        &model("  dim B = 2\n  dim B = 3\n  input x: f32[B]\n"),
        "dim `B` is declared twice",
        "3:7",
    );
    expect(
        &model("  input x: f32[2]\n  output x, y = x, x\n"),
        "output `x` is declared twice",
        "3:20",
    );
}

#[test]
fn shape_mismatch_uses_the_inference_message() {
    let src = model("  input x: f32[2, 3]\n  input w: f32[4, 5]\n  y = relu(x @ w)\n");
    let d = expect(
        &src,
        "matmul: inner dimensions differ: [2, 3] @ [4, 5] (3 vs 4)",
        "4:12",
    );
    assert_eq!(d.iter().next().unwrap().label, "in this `matmul`");
    expect(
        &model("  input a: f32[2, 3]\n  input b: f32[4]\n  y = add(a, b)\n"),
        "add: shapes [2, 3] and [4] do not broadcast",
        "4:7",
    );
    expect(
        &model("  input a: f32[2, 3]\n  input i: i64[2]\n  y = a + i\n"),
        "add: operands must have the same dtype, got f32[2, 3] and i64[2]",
        "4:7",
    );
}

#[test]
fn unbound_dimension_points_at_first_use() {
    let src = model("  input x: f32[B, 3]\n  input y: f32[B, 3]\n  z = x + y\n");
    let (d, r) = fail(&src);
    assert_eq!(d.len(), 1, "reported once:\n{r}");
    let d = expect(
        &src,
        "unbound dimension `B`; bind it with --dim B=<size>",
        "2:16",
    );
    assert_eq!(d.iter().next().unwrap().line_col(&src), Some((2, 16)));
    let dims = Dims::from([("B".to_string(), 4), ("UNUSED".to_string(), 9)]);
    let g = syntax::parse_graph(&src, &dims).unwrap();
    assert_eq!(g.ty(g.lookup("z").unwrap()).shape, vec![4, 3]);
    expect(
        &model("  input x: f32[2, 3]\n  y = reshape(x, shape=[N, -1])\n"),
        "unbound dimension `N`",
        "3:25",
    );
    let m = syntax::parse(&src).unwrap();
    assert_eq!(m.dim_names(), vec!["B".to_string()]);
}

#[test]
fn destructuring_count_mismatch() {
    let body = "  input x: f32[5, 2, 3]\n  input h: f32[2, 4]\n  input wi: f32[4, 3]\n  input wh: f32[4, 4]\n  input b: f32[4]\n";
    let d = expect(
        &model(&format!("{body}  a, b2, c = rnn(x, h, wi, wh, b, b)\n")),
        "`rnn` returns 2 value(s) (y [T, B, H], h_n), but 3 name(s) are given",
        "7:3",
    );
    assert!(d.len() == 1);
    expect(
        &model(&format!("{body}  y = relu(rnn(x, h, wi, wh, b, b))\n")),
        "`rnn` returns 2 values and cannot be used inside an expression",
        "7:12",
    );
    expect(
        &model("  input x: f32[2]\n  a, b = x\n"),
        "this expression returns 1 value(s), but 2 name(s) are given",
        "3:3",
    );
}

#[test]
fn empty_file_no_model_and_trailing_garbage() {
    expect("", "empty file: no model", "1:1");
    expect("# only a comment\n\n", "empty file: no model", "1:1");
    expect(
        "input x: f32[2]\n",
        "expected `model`, found keyword `input`",
        "1:1",
    );
    expect(
        "model m {\n}\nmodel n {\n}\n",
        "trailing text after the model",
        "3:1",
    );
    expect(
        "model m {\n  input x: f32[2]\n",
        "expected `}`, found end of file",
        "2:19",
    );
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!(
        "  input x: f32[2]\n  y = {}x{}\n",
        "(".repeat(500),
        ")".repeat(500)
    );
    expect(
        &model(&deep),
        "nesting too deep (more than 200 levels)",
        "3:207",
    );
    let long = format!("  input x: f32[2]\n  y = x{}\n", " + x".repeat(1000));
    let (d, r) = fail(&model(&long));
    assert!(
        d.iter().any(|x| x.message.contains("nested too deeply")),
        "{r}"
    );
    let neg = format!("  input x: f32[2]\n  y = {}x\n", "-".repeat(100_000));
    fail(&model(&neg));
    let call = format!(
        "  input x: f32[2]\n  y = {}x{}\n",
        "relu(".repeat(300),
        ")".repeat(300)
    );
    fail(&model(&call));
    let lit = format!(
        "  const c: f32[1] = {}1{}\n",
        "[".repeat(300),
        "]".repeat(300)
    );
    fail(&model(&lit));
    let attr = format!(
        "  input x: f32[2]\n  y = relu(x, a={}1{})\n",
        "[".repeat(300),
        "]".repeat(300)
    );
    fail(&model(&attr));
    // 150 levels are fine.
    let ok = format!(
        "  input x: f32[2]\n  y = {}x{}\n  output y\n",
        "(".repeat(150),
        ")".repeat(150)
    );
    syntax::parse_graph(&model(&ok), &Dims::new()).unwrap();
}

#[test]
fn huge_literals_and_absurd_shapes() {
    expect(
        &model("  y = 99999999999999999999999\n"),
        "integer literal `99999999999999999999999` is too large",
        "2:7",
    );
    expect(
        &model("  y = 18446744073709551615\n"),
        "integer literal 18446744073709551615 does not fit in i64",
        "2:7",
    );
    expect(
        &model("  y = 1e999\n"),
        "float literal `1e999` is out of range",
        "2:7",
    );
    expect(
        &model("  const c: i64 = 9223372036854775808\n"),
        "needs integers that fit in i64",
        "2:18",
    );
    expect(
        &model("  input x: f32[100000, 100000, 100000]\n"),
        "invalid shape f32[100000, 100000, 100000]: the element count exceeds",
        "2:12",
    );
    expect(&model("  input x: f32[2, 0]\n"), "dimension 1 is 0", "2:12");
    expect(
        &model("  input x: f32[1, 1, 1, 1, 1, 1, 1, 1, 1]\n"),
        "rank 9 exceeds the maximum rank 8",
        "2:12",
    );
    expect(
        &model("  input x: f32[18446744073709551615, 18446744073709551615]\n"),
        "exceeds the limit",
        "2:12",
    );
    expect(
        &model("  input x: f32[2]\n  y = broadcast_to(x, shape=[65536, 65536, 2])\n"),
        "broadcast_to: result shape",
        "3:7",
    );
    expect(
        &model("  dim B = 0\n  input x: f32[B]\n"),
        "dim `B` = 0 is out of range",
        "2:11",
    );
    let dims = Dims::from([("B".to_string(), usize::MAX)]);
    let (d, _) = fail_with(&model("  input x: f32[B, 2]\n"), &dims);
    assert!(d.iter().any(|x| x.message.contains("element count")));
}

#[test]
fn const_and_param_errors() {
    expect(
        &model("  const c: f32[2, 2] = [[1, 2], [3]]\n"),
        "expected a list of 2 values, found 1",
        "2:33",
    );
    expect(
        &model("  const c: f32[2] = 1\n"),
        "expected a list of 2 values, found a single value",
        "2:21",
    );
    expect(
        &model("  const c: bool = 1\n"),
        "a bool constant needs `true` or `false`",
        "2:19",
    );
    expect(
        &model("  const c: i64 = 1.5\n"),
        "a i64 constant needs integers",
        "2:18",
    );
    let d = expect(
        &model("  param w: f32[2] = glorot_unifrom\n"),
        "unknown initialiser `glorot_unifrom`",
        "2:21",
    );
    assert!(notes(&d).contains("did you mean `glorot_uniform`?"));
    expect(
        &model("  param w: f32[2] = normal(0)\n"),
        "initialiser `normal` takes 2 argument(s)",
        "2:21",
    );
    expect(
        &model("  param w: f32[2]\n"),
        "expected `=` and an initialiser",
        "2:18",
    );
}

#[test]
fn comparisons_do_not_chain() {
    expect(
        &model("  input x: f32[2]\n  y = x < x < x\n"),
        "comparisons cannot be chained",
        "3:13",
    );
}

#[test]
fn errors_display_and_implement_error() {
    let (d, _) = fail(&model("  y = rleu(1)\n"));
    let e: &dyn std::error::Error = &d;
    assert!(e.to_string().contains("unknown op `rleu`"));
    let one: &dyn std::error::Error = d.iter().next().unwrap();
    assert!(one.to_string().contains("did you mean `relu`?"));
}
