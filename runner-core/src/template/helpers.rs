//! What the handlebars registry is given on top of its own helpers: typed
//! insertion, `default`, Mustache sections, the Liquid `| default:` filter
//! form, and render errors in words.

use handlebars::JsonTruthy;
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde_json::Value;

/// Name of the helper that serialises its argument as JSON; typed insertion
/// renders `{{<TYPED_HELPER> path}}` and parses the result back.
pub(super) const TYPED_HELPER: &str = "__typed_value";

/// Mustache sections over a path (`{{#a.b}}…{{/a.b}}`, `{{^a.b}}…{{/a.b}}`),
/// which handlebars.js accepts and handlebars-rust does not, are rewritten to
/// `{{#each (__section a.b)}}…{{/each}}` / `{{#unless a.b}}…{{/unless}}`.
/// `__section` yields the items a Mustache section iterates: the list itself,
/// `[value]` for another truthy value, `[]` for a falsy or missing one.
pub(super) const SECTION_HELPER: &str = "__section";

/// Block helpers handlebars-rust has; any other `{{#name}}` is a Mustache section.
pub(super) const BLOCK_HELPERS: &[&str] = &["if", "unless", "each", "with", "lookup", "raw"];

/// Name of the helper `{{default value fallback}}`: `value` unless it is
/// missing, `null` or `""`. The Handlebars way to write Liquid's `| default:`.
pub(super) const DEFAULT_HELPER: &str = "default";

/// `{{__typed_value path}}`: writes the value at `path` as JSON. In strict mode
/// a missing value is an error naming the path; otherwise it is `null`.
pub(super) fn typed_value_helper(
    h: &Helper<'_>,
    r: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let param = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(TYPED_HELPER, 0))?;
    if param.is_value_missing() {
        if r.strict_mode() {
            return Err(RenderErrorReason::MissingVariable(param.relative_path().cloned()).into());
        }
        out.write("null")?;
        return Ok(());
    }
    let text = serde_json::to_string(param.value())
        .map_err(|e| RenderError::from(RenderErrorReason::SerdeError(e)))?;
    out.write(&text)?;
    Ok(())
}

/// `{{default value fallback}}`: the value, unless it is missing, `null` or
/// `""`, then the fallback. Written as text (strings as is, others as JSON).
pub(super) fn default_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h
        .param(0)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(DEFAULT_HELPER, 0))?;
    let fallback = h
        .param(1)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(DEFAULT_HELPER, 1))?;
    let chosen = match value.value() {
        _ if value.is_value_missing() => fallback.value(),
        Value::Null => fallback.value(),
        Value::String(s) if s.is_empty() => fallback.value(),
        v => v,
    };
    match chosen {
        Value::String(s) => out.write(s)?,
        Value::Null => {}
        other => out.write(&other.to_string())?,
    }
    Ok(())
}

/// The items of a Mustache section over its parameter (see [`SECTION_HELPER`]).
pub(super) struct SectionItems;

impl handlebars::HelperDef for SectionItems {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<handlebars::ScopedJson<'rc>, RenderError> {
        let items = match h.param(0) {
            Some(p) if !p.is_value_missing() => match p.value() {
                Value::Array(items) => items.clone(),
                v if v.is_truthy(false) => vec![v.clone()],
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        Ok(handlebars::ScopedJson::Derived(Value::Array(items)))
    }
}

/// Where `needle` starts in `text`. A flow's texts are short: a plain byte
/// scan beats `str::contains`/`find`, whose Two-Way searcher costs more to set
/// up than such a search (a tenth of template compiling in B8's profile of the
/// runner component). The needle is a non-empty literal: a match of one
/// starts on a char boundary, so the positions can slice `text`.
pub(crate) fn find_all<'a>(text: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    debug_assert!(!needle.is_empty(), "an empty needle matches between bytes");
    let (text, needle) = (text.as_bytes(), needle.as_bytes());
    (0..(text.len() + 1).saturating_sub(needle.len()))
        // The first byte first: a slice comparison is a `memcmp` call, and
        // wasi-libc's compares byte by byte.
        .filter(move |&at| text.get(at) == needle.first() && text[at..].starts_with(needle))
}

/// `text.find(needle)` by [`find_all`]'s byte scan.
pub(crate) fn find(text: &str, needle: &str) -> Option<usize> {
    find_all(text, needle).next()
}

/// `text.contains(needle)` by [`find_all`]'s byte scan.
pub(crate) fn has(text: &str, needle: &str) -> bool {
    find(text, needle).is_some()
}

/// Rewrites Mustache sections over a path into Handlebars blocks (see
/// [`SECTION_HELPER`]); everything else is left as written.
pub(super) fn mustache_sections(text: &str) -> std::borrow::Cow<'_, str> {
    if !has(text, "{{#") && !has(text, "{{^") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    // What each open block was: Some(closer) for a rewritten section.
    let mut open: Vec<(String, Option<&'static str>)> = Vec::new();
    let mut rest = text;
    while let Some(at) = find(rest, "{{") {
        out.push_str(&rest[..at]);
        let tag = &rest[at..];
        let Some(end) = find(tag, "}}") else {
            out.push_str(tag);
            return std::borrow::Cow::Owned(out);
        };
        let inner = &tag[2..end];
        let body = inner.trim();
        let single = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
        let mut replaced = None;
        if let Some(name) = body.strip_prefix('#') {
            let name = name.trim();
            let first = name.split_whitespace().next().unwrap_or("");
            if single(name) && !BLOCK_HELPERS.contains(&name) && !name.starts_with('>') {
                replaced = Some(format!("{{{{#each ({SECTION_HELPER} {name})}}}}"));
                open.push((name.to_string(), Some("{{/each}}")));
            } else {
                open.push((first.to_string(), None));
            }
        } else if let Some(name) = body.strip_prefix('^').map(str::trim) {
            if single(name) {
                replaced = Some(format!("{{{{#unless {name}}}}}"));
                open.push((name.to_string(), Some("{{/unless}}")));
            }
        } else if let Some(name) = body.strip_prefix('/').map(str::trim)
            && let Some((opened, closer)) = open.pop()
            && let Some(closer) = closer.filter(|_| opened == name)
        {
            replaced = Some(closer.to_string());
        }
        match replaced {
            Some(r) => out.push_str(&r),
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Whether `text` reads the root `name` (`name.` / `name[` / `{{name}}`, not
/// as the tail of a longer name).
pub(super) fn mentions_root(text: &str, name: &str) -> bool {
    find_all(text, name).any(|at| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
            && matches!(after, Some('.' | '[' | '}' | ' '))
    })
}

/// The first `{{…}}` expression of `text` that uses a `|` filter, Liquid or
/// Jinja style (`{{x | default: 'd'}}`). Handlebars' own `|` (block params,
/// `{{#each xs as |x|}}`) and `||` inside strings are not filters.
pub(super) fn liquid_filter(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(open) = find(rest, "{{") {
        let after = &rest[open + 2..];
        let close = find(after, "}}")?;
        let inner = &after[..close];
        let body = inner.trim_start_matches(['{', '~', ' ']);
        let has_filter = inner.contains('|')
            && !has(inner, "||")
            && !body.starts_with('#')
            && !body.starts_with('!')
            && !inner.contains(" as |");
        if has_filter {
            return Some(format!("{{{{{inner}}}}}"));
        }
        rest = &after[close + 2..];
    }
    None
}

pub(super) fn describe_render_error(e: &RenderError) -> String {
    let at = match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!(" at {l}:{c}"),
        _ => String::new(),
    };
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            format!("missing variable `{path}`{at}")
        }
        RenderErrorReason::MissingVariable(None) => format!("missing variable{at}"),
        other => format!("{other}{at}"),
    }
}
