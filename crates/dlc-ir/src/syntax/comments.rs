//! Attaching comments to statements, for the formatter.

use super::ast::{Item, Model};
use super::lexer::Comment;

/// Attaches comments to the statements: own-line comments lead the next statement,
/// end-of-line comments trail the statement on that line.
pub(super) fn attach_comments(m: &mut Model, comments: &[Comment], src: &str) {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(src.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |pos: usize| line_starts.partition_point(|&s| s <= pos);
    let own_line = |c: &Comment| {
        src[..c.span.start]
            .rsplit('\n')
            .next()
            .unwrap_or("")
            .trim()
            .is_empty()
    };
    let open_line = line_of(m.name_span.start);
    let mut ci = 0;
    let mut prev_end = m.name_span.end;
    let mut pending: Vec<String> = Vec::new();
    // Before `model`, and on its line.
    while ci < comments.len() && comments[ci].span.start < m.span.start {
        m.header_comments.push(comments[ci].text.clone());
        ci += 1;
    }
    if ci < comments.len() && line_of(comments[ci].span.start) == open_line {
        m.open_comment = Some(comments[ci].text.clone());
        ci += 1;
    }
    for idx in 0..m.items.len() {
        let start = m.items[idx].span.start;
        let mut first_start = start;
        while ci < comments.len() && comments[ci].span.start < start {
            let c = &comments[ci];
            if own_line(c) || idx == 0 {
                if pending.is_empty() {
                    first_start = c.span.start;
                }
                pending.push(c.text.clone());
            } else {
                append_trailing(&mut m.items[idx - 1], &c.text);
            }
            ci += 1;
        }
        let gap = &src[prev_end.min(first_start)..first_start];
        let item = &mut m.items[idx];
        item.blank_before = idx > 0 && gap.matches('\n').count() >= 2;
        item.comments = std::mem::take(&mut pending);
        // Comments inside or at the end of the statement's last line trail it.
        let last_line = line_of(item.span.end);
        while ci < comments.len()
            && (comments[ci].span.start < item.span.end
                || line_of(comments[ci].span.start) == last_line)
        {
            append_trailing(item, &comments[ci].text);
            ci += 1;
        }
        prev_end = item.span.end;
    }
    while ci < comments.len() && comments[ci].span.start < m.span.end {
        m.end_comments.push(comments[ci].text.clone());
        ci += 1;
    }
    m.footer_comments = comments[ci..].iter().map(|c| c.text.clone()).collect();
}

fn append_trailing(item: &mut Item, text: &str) {
    item.trailing = Some(match item.trailing.take() {
        Some(t) => format!("{t} {text}"),
        None => text.to_string(),
    });
}
