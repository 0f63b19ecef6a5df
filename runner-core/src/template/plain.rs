//! The fast path of text templates: a template that is only literal text and
//! plain paths renders by looking the paths up directly, without handlebars.

use handlebars::JsonRender;
use handlebars::Template;
use handlebars::template::{Parameter, TemplateElement};
use serde_json::Value;

use super::helpers::find;

/// A piece of a plain text template.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Text(String),
    Path(Vec<String>),
}

/// If `text` is exactly one `{{path}}` / `{{{path}}}` expression (no helper, no
/// parameters, nothing around it), returns the path as written.
pub(super) fn single_path_expression(text: &str, compiled: &Template) -> Option<String> {
    let [element] = compiled.elements.as_slice() else {
        return None;
    };
    let helper = match element {
        TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => h,
        _ => return None,
    };
    if !helper.params.is_empty() || !helper.hash.is_empty() || helper.block {
        return None;
    }
    if !matches!(helper.name, Parameter::Path(_) | Parameter::Name(_)) {
        return None;
    }
    let inner = text
        .strip_prefix("{{{")
        .and_then(|t| t.strip_suffix("}}}"))
        .or_else(|| text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")))?;
    let path = inner.trim_matches('~').trim();
    // `{{else}}` is a keyword, not a path.
    if path.is_empty() || path == "else" {
        return None;
    }
    Some(path.to_string())
}

/// `text` as literal pieces and plain paths, when that is all it is, read
/// without handlebars' parser (which costs most of a flow's planning): every
/// `{{...}}` / `{{{...}}}` a [`simple_path`] from a context root, no escapes,
/// whitespace control, comments or stray braces next to a tag. Conservative:
/// anything else is left to handlebars. Tests and the `template` fuzz target
/// check that handlebars reads an accepted text as the same pieces
/// ([`same_as_compiled`]).
pub(super) fn scan_plain(text: &str) -> Option<Vec<Piece>> {
    if text.contains('\\') || text.contains('~') {
        return None;
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = find(rest, "{{") {
        let literal = &rest[..open];
        if literal.contains('{') {
            return None;
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal.to_string()));
        }
        let tag = &rest[open..];
        let (inner_start, close) = if tag.starts_with("{{{") {
            (3, "}}}")
        } else {
            (2, "}}")
        };
        let end = find(tag, close)?;
        // `{{{{` opens a raw block; a brace right after the close would be
        // read as part of the tag.
        let after = &tag[end + close.len()..];
        if tag[inner_start..].starts_with('{') || after.starts_with('}') {
            return None;
        }
        // Handlebars' whitespace is ASCII only.
        let inner = tag[inner_start..end].trim_matches([' ', '\t', '\n', '\r']);
        let path = simple_path(inner)?;
        // A root is never a helper's name: `{{root...}}` is a value, not a call.
        if !crate::context::ROOTS.contains(&path[0].as_str()) {
            return None;
        }
        pieces.push(Piece::Path(path));
        rest = after;
    }
    if rest.contains('{') {
        return None;
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Some(pieces)
}

/// Whether handlebars compiled `compiled` to exactly `pieces`: literal text
/// for text, a plain expression (no helper, parameters or block) for a path.
#[cfg(any(test, fuzzing))]
pub(super) fn same_as_compiled(pieces: &[Piece], compiled: &Template) -> bool {
    pieces.len() == compiled.elements.len()
        && pieces
            .iter()
            .zip(&compiled.elements)
            .all(|(piece, element)| match (piece, element) {
                (Piece::Text(a), TemplateElement::RawString(b)) => a == b,
                (
                    Piece::Path(path),
                    TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h),
                ) => h.params.is_empty() && h.hash.is_empty() && !h.block && names(&h.name, path),
                _ => false,
            })
}

/// Whether a helper name is the plain path `path` (a name for one segment).
#[cfg(any(test, fuzzing))]
fn names(name: &Parameter, path: &[String]) -> bool {
    use handlebars::{Path, PathSeg};
    match name {
        Parameter::Name(n) => path.len() == 1 && *n == path[0],
        Parameter::Path(Path::Relative((segments, _))) => {
            segments.len() == path.len()
                && segments
                    .iter()
                    .zip(path)
                    .all(|(s, p)| matches!(s, PathSeg::Named(n) if n == p))
        }
        _ => false,
    }
}

/// Renders plain pieces as handlebars would (values as `JsonRender` writes
/// them, no escaping); `None` if a path is missing.
pub(super) fn render_plain(pieces: &[Piece], data: &Value) -> Option<String> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Path(path) => match lookup(data, path)? {
                Value::String(s) => out.push_str(s),
                value => out.push_str(&value.render()),
            },
        }
    }
    Some(out)
}

/// `a.b.0` as segments, when the path uses nothing but names and indices
/// (no `this`, `../`, `@root`, `[...]`): then a direct lookup gives exactly
/// what handlebars would.
pub(super) fn simple_path(path: &str) -> Option<Vec<String>> {
    let segments: Vec<String> = path.split('.').map(str::to_string).collect();
    let plain = |s: &String| {
        !s.is_empty()
            && s != "this"
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    segments.iter().all(plain).then_some(segments)
}

/// Handlebars' lookup on JSON: object keys, and array indices by number.
pub(super) fn lookup<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(root, |value, segment| match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}
