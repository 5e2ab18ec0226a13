//! Reductions on the model's text: shrink integer literals (dimensions above all)
//! and delete attributes, then re-elaborate, so every candidate is re-typed and
//! re-verified by the real front end. Values are cut down to the new shapes.

use dlc_ir::Graph;
use dlc_ir::syntax::{Dims, parse_graph, print};
use dlc_tensor::{Env, Tensor, Value};
use ndarray::{ArrayD, Slice};

use crate::TestCase;

/// An integer literal in the text: byte range and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IntTok {
    start: usize,
    end: usize,
    /// The literal's value.
    pub value: u64,
}

/// The integer literals of `text` that are whole tokens (not parts of names or
/// floats).
pub(crate) fn int_tokens(text: &str) -> Vec<IntTok> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && word(b[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i < b.len() && word(b[i]) {
            // A float (`2.5`, `1e-3`) or a name: skip it whole.
            while i < b.len() && (word(b[i]) || (b"+-".contains(&b[i]) && b[i - 1] == b'e')) {
                i += 1;
            }
            continue;
        }
        if let Ok(value) = text[start..i].parse() {
            out.push(IntTok {
                start,
                end: i,
                value,
            });
        }
    }
    out
}

/// Candidate texts that shrink integer literals: every occurrence of a value at
/// once (keeps equal dims equal), then single occurrences; to 1, then to half.
pub(crate) fn shrink_ints(text: &str) -> Vec<String> {
    let toks = int_tokens(text);
    let mut values: Vec<u64> = toks.iter().map(|t| t.value).filter(|&v| v >= 2).collect();
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.dedup();
    let mut out = Vec::new();
    for &v in &values {
        for to in targets(v) {
            let sel: Vec<IntTok> = toks.iter().copied().filter(|t| t.value == v).collect();
            out.push(replace(text, &sel, to));
        }
    }
    for t in toks.iter().filter(|t| t.value >= 2) {
        for to in targets(t.value) {
            out.push(replace(text, &[*t], to));
        }
    }
    out
}

fn targets(v: u64) -> Vec<u64> {
    let mut t = vec![1];
    if v / 2 > 1 {
        t.push(v / 2);
    }
    t
}

fn replace(text: &str, toks: &[IntTok], to: u64) -> String {
    let mut s = String::with_capacity(text.len());
    let mut at = 0;
    for t in toks {
        s.push_str(&text[at..t.start]);
        s.push_str(&to.to_string());
        at = t.end;
    }
    s.push_str(&text[at..]);
    s
}

/// Candidate texts with one keyword attribute of one call deleted (it takes its
/// default), or a `true` flag turned `false`.
pub(crate) fn drop_attrs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(open) = line.find('(').filter(|_| line.contains(" = ")) {
            for (a, b) in top_level_args(line, open) {
                let arg = &line[a..b];
                if !arg.contains('=') {
                    continue;
                }
                // Remove ", arg" (the preceding separator with it).
                let cut = line[..a].rfind(',').unwrap_or(a);
                out.push(format!("{}{}", &text[..offset + cut], &text[offset + b..]));
                if arg.trim_end().ends_with("=true") {
                    let t = offset + a + arg.rfind("true").unwrap_or(0);
                    out.push(format!("{}false{}", &text[..t], &text[t + 4..]));
                }
            }
        }
        offset += line.len();
    }
    out
}

/// Byte ranges of the top-level comma-separated arguments of the call whose
/// parenthesis is at `open`.
fn top_level_args(line: &str, open: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = open + 1;
    for (i, c) in line.char_indices().skip_while(|&(i, _)| i <= open) {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' if depth > 0 => depth -= 1,
            ')' => {
                out.push((start, i));
                break;
            }
            ',' if depth == 0 => {
                out.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

/// Elaborates `text` and cuts the case's values down to the new types (a prefix
/// along every dim). `None` if the text is not a valid model or a value cannot
/// be cut (a different dtype or rank, or a dim that grew).
pub(crate) fn reparse(case: &TestCase, text: &str) -> Option<TestCase> {
    let graph: Graph = parse_graph(text, &Dims::new()).ok()?;
    let cut = |env: &Env, id| -> Option<(String, Tensor)> {
        let node = graph.node(id);
        let (name, ty) = (&node.names[0], &node.types[0]);
        let old = env.get(name)?;
        let v = match old {
            Value::Float(a) => Value::Float(prefix(a, &ty.shape)?),
            Value::Int(a) => Value::Int(prefix(a, &ty.shape)?),
            Value::Bool(a) => Value::Bool(prefix(a, &ty.shape)?),
        };
        (v.dtype() == ty.dtype).then(|| (name.clone(), v))
    };
    let inputs: Option<Env> = graph.inputs().map(|id| cut(&case.inputs, id)).collect();
    let params: Option<Env> = graph.params().map(|id| cut(&case.params, id)).collect();
    Some(TestCase {
        inputs: inputs?,
        params: params?,
        graph,
    })
}

fn prefix<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> Option<ArrayD<T>> {
    if a.ndim() != shape.len() || a.shape().iter().zip(shape).any(|(&o, &n)| n > o) {
        return None;
    }
    let s = a.slice_each_axis(|ax| Slice::from(0..shape[ax.axis.index()]));
    Some(s.to_owned())
}

/// The printed model (the text the text passes edit).
pub(crate) fn text_of(case: &TestCase) -> String {
    print(&case.graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_tokens_skip_names_and_floats() {
        let t = "  _12 = add(x3, y, axis=12)\n  z: f32[7, 13] = uniform(1.5, 2e-3)\n";
        let v: Vec<u64> = int_tokens(t).iter().map(|t| t.value).collect();
        assert_eq!(v, vec![12, 7, 13]);
    }

    #[test]
    fn attributes_are_dropped_one_at_a_time() {
        let t = "model m {\n  y = conv1d(x, w, stride=2, padding=[1, 0], groups=1)\n}\n";
        let c = drop_attrs(t);
        assert_eq!(c.len(), 3);
        assert!(
            c[0].contains("conv1d(x, w, padding=[1, 0], groups=1)"),
            "{}",
            c[0]
        );
        assert!(
            c[1].contains("conv1d(x, w, stride=2, groups=1)"),
            "{}",
            c[1]
        );
        let t = "  y = attention(q, k, v, causal=true)\n";
        let c = drop_attrs(t);
        assert_eq!(c[1], "  y = attention(q, k, v, causal=false)\n");
    }
}
