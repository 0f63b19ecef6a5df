//! Node input templating on top of handlebars.
//!
//! Rules (seeds 001 and 003):
//! - a string that is exactly one `{{path}}` (or `{{{path}}}`) expression inserts
//!   the typed JSON value the path points at (number, bool, object, array,
//!   string or null);
//! - any other string containing `{{` is rendered by handlebars into a string
//!   (several expressions, block helpers such as `{{#if}}`, ...);
//! - strings without `{{` and all other scalars pass through unchanged;
//! - objects and arrays are walked recursively; keys are never templated;
//! - no HTML escaping;
//! - a missing variable is an error in strict mode (the default) and renders as
//!   empty (or `null` for typed insertion) in lenient mode.
//!
//! Every template is compiled once, when the flow loads.

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, Template,
};
use handlebars::{JsonRender, JsonTruthy};
use serde_json::Value;

use crate::context::ContextNeeds;
use crate::error::TemplateError;

/// Name of the helper that serialises its argument as JSON; typed insertion
/// renders `{{<TYPED_HELPER> path}}` and parses the result back.
const TYPED_HELPER: &str = "__typed_value";

/// A compiled node input.
#[derive(Debug, Clone)]
pub(crate) enum InputTemplate {
    /// Passed through as is.
    Literal(Value),
    /// `{{a.b.0}}`: inserts the typed value, looked up directly (the common
    /// case; the same result as handlebars, without rendering to text).
    Lookup {
        path: Vec<String>,
        field: String,
        expr: String,
    },
    /// `{{path}}` with other path syntax: inserts the typed value through
    /// handlebars. `name` is the registered template.
    Typed {
        name: String,
        field: String,
        expr: String,
    },
    /// Any other string with `{{`: renders to a string. `plain` is set when
    /// it is only literal text and plain paths (`Hi {{entry.name}}!`): then it
    /// renders by direct lookup, and through handlebars only if a path is missing.
    Text {
        name: String,
        field: String,
        expr: String,
        plain: Option<Vec<Piece>>,
    },
    Array(Vec<InputTemplate>),
    Object(Vec<(String, InputTemplate)>),
}

/// A piece of a plain text template.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Text(String),
    Path(Vec<String>),
}

impl InputTemplate {
    /// The literal string under the first of `keys` present in an object
    /// template (e.g. a `flow.call`'s `flow` when it is not templated).
    pub(crate) fn literal_field(&self, keys: &[&str]) -> Option<String> {
        let InputTemplate::Object(entries) = self else {
            return None;
        };
        keys.iter().find_map(|key| {
            entries.iter().find_map(|(k, t)| match t {
                InputTemplate::Literal(Value::String(s)) if k == key => Some(s.clone()),
                _ => None,
            })
        })
    }
}

/// The handlebars registry of one flow, with our settings.
pub(crate) struct Templates {
    registry: Handlebars<'static>,
    file: String,
    needs: ContextNeeds,
}

/// Mustache sections over a path (`{{#a.b}}…{{/a.b}}`, `{{^a.b}}…{{/a.b}}`),
/// which handlebars.js accepts and handlebars-rust does not, are rewritten to
/// `{{#each (__section a.b)}}…{{/each}}` / `{{#unless a.b}}…{{/unless}}`.
/// `__section` yields the items a Mustache section iterates: the list itself,
/// `[value]` for another truthy value, `[]` for a falsy or missing one.
const SECTION_HELPER: &str = "__section";

/// Block helpers handlebars-rust has; any other `{{#name}}` is a Mustache section.
const BLOCK_HELPERS: &[&str] = &["if", "unless", "each", "with", "lookup", "raw"];

/// Name of the helper `{{default value fallback}}`: `value` unless it is
/// missing, `null` or `""`. The Handlebars way to write Liquid's `| default:`.
const DEFAULT_HELPER: &str = "default";

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("file", &self.file)
            .finish()
    }
}

impl Templates {
    pub(crate) fn new(file: &str, strict: bool) -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(strict);
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper(TYPED_HELPER, Box::new(typed_value_helper));
        registry.register_helper(DEFAULT_HELPER, Box::new(default_helper));
        registry.register_helper(SECTION_HELPER, Box::new(SectionItems));
        Templates {
            registry,
            file: file.to_string(),
            needs: ContextNeeds::default(),
        }
    }

    /// Context roots that cost something to build, as far as the templates and
    /// conditions seen so far mention them.
    pub(crate) fn needs(&self) -> ContextNeeds {
        self.needs
    }

    /// Records the roots a template or condition text mentions.
    pub(crate) fn note_text(&mut self, text: &str) {
        let needs = &mut self.needs;
        needs.in_alias |= mentions_root(text, "in");
        needs.state_view |= ["state.entry", "state.input", "state.nodes"]
            .iter()
            .any(|r| text.contains(r));
        needs.now |= mentions_root(text, "now");
        needs.entry_input |= text.contains("input");
    }

    /// Compiles a node input tree. `field` is the path of `value` for messages.
    pub(crate) fn compile(
        &mut self,
        node: &str,
        field: &str,
        value: &Value,
    ) -> Result<InputTemplate, TemplateError> {
        Ok(match value {
            Value::String(s) if s.contains("{{") => self.compile_string(node, field, s)?,
            Value::Array(items) => InputTemplate::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.compile(node, &format!("{field}[{i}]"), v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => InputTemplate::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.compile(node, &format!("{field}.{k}"), v)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => InputTemplate::Literal(other.clone()),
        })
    }

    fn compile_string(
        &mut self,
        node: &str,
        field: &str,
        text: &str,
    ) -> Result<InputTemplate, TemplateError> {
        self.note_text(text);
        let rewritten = mustache_sections(text);
        let error = |reason: String| TemplateError {
            file: self.file.clone(),
            node: node.to_string(),
            field: field.to_string(),
            expr: text.to_string(),
            reason,
        };
        if let Some(expr) = liquid_filter(text) {
            return Err(error(format!(
                "`{expr}` uses a `|` filter (Liquid/Jinja style), which Handlebars does not have; write `{{{{default x \"fallback\"}}}}` or `{{{{#if x}}}}{{{{x}}}}{{{{else}}}}fallback{{{{/if}}}}`"
            )));
        }
        let compiled = Template::compile(&rewritten).map_err(|e| {
            let at = e
                .pos()
                .map(|(l, c)| format!(" at {l}:{c}"))
                .unwrap_or_default();
            // pest lists every rule it expected; the position says more.
            let reason = e.reason().to_string();
            let reason = reason
                .split(": expected")
                .next()
                .unwrap_or(&reason)
                .to_string();
            error(format!("syntax error{at}: {reason}"))
        })?;
        let name = format!("{node}{field}");
        if let Some(path) = single_path_expression(&rewritten, &compiled) {
            if let Some(segments) = simple_path(&path) {
                return Ok(InputTemplate::Lookup {
                    path: segments,
                    field: field.to_string(),
                    expr: text.to_string(),
                });
            }
            let typed = Template::compile(&format!("{{{{{TYPED_HELPER} {path}}}}}"))
                .map_err(|e| error(format!("syntax error: {}", e.reason())))?;
            self.registry.register_template(&name, typed);
            Ok(InputTemplate::Typed {
                name,
                field: field.to_string(),
                expr: text.to_string(),
            })
        } else {
            let plain = plain_pieces(&rewritten, &compiled);
            self.registry.register_template(&name, compiled);
            Ok(InputTemplate::Text {
                name,
                field: field.to_string(),
                expr: text.to_string(),
                plain,
            })
        }
    }

    /// Renders a compiled input against the run context.
    pub(crate) fn render(
        &self,
        node: &str,
        input: &InputTemplate,
        ctx: &Context,
    ) -> Result<Value, TemplateError> {
        Ok(match input {
            InputTemplate::Literal(v) => v.clone(),
            InputTemplate::Lookup { path, field, expr } => match lookup(ctx.data(), path) {
                Some(value) => value.clone(),
                None if self.registry.strict_mode() => {
                    let missing = format!("missing variable `{}` at 1:1", path.join("."));
                    return Err(self.render_error(node, field, expr, missing));
                }
                None => Value::Null,
            },
            InputTemplate::Typed { name, field, expr } => {
                let text = self.render_named(node, name, field, expr, ctx)?;
                serde_json::from_str(&text)
                    .map_err(|e| self.render_error(node, field, expr, e.to_string()))?
            }
            InputTemplate::Text {
                name,
                field,
                expr,
                plain,
            } => match plain.as_deref().and_then(|p| render_plain(p, ctx.data())) {
                Some(text) => Value::String(text),
                // A missing path: handlebars says what that means (an error
                // in strict mode, empty text otherwise).
                None => Value::String(self.render_named(node, name, field, expr, ctx)?),
            },
            InputTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| self.render(node, t, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            InputTemplate::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, t)| Ok((k.clone(), self.render(node, t, ctx)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
        })
    }

    fn render_named(
        &self,
        node: &str,
        name: &str,
        field: &str,
        expr: &str,
        ctx: &Context,
    ) -> Result<String, TemplateError> {
        self.registry
            .render_with_context(name, ctx)
            .map_err(|e| self.render_error(node, field, expr, describe_render_error(&e)))
    }

    fn render_error(&self, node: &str, field: &str, expr: &str, reason: String) -> TemplateError {
        TemplateError {
            file: self.file.clone(),
            node: node.to_string(),
            field: field.to_string(),
            expr: expr.to_string(),
            reason,
        }
    }
}

/// If `text` is exactly one `{{path}}` / `{{{path}}}` expression (no helper, no
/// parameters, nothing around it), returns the path as written.
fn single_path_expression(text: &str, compiled: &Template) -> Option<String> {
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

/// `text` as literal pieces and plain paths, when that is all it is: every
/// `{{...}}` / `{{{...}}}` a [`simple_path`] from a context root, no escapes,
/// whitespace control or comments, and handlebars compiled it to exactly
/// those pieces (so rendering them directly gives what handlebars would).
fn plain_pieces(text: &str, compiled: &Template) -> Option<Vec<Piece>> {
    if text.contains('\\') || text.contains('~') {
        return None;
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let after = &rest[open..];
        let (inner_start, close) = if after.starts_with("{{{") {
            (3, "}}}")
        } else {
            (2, "}}")
        };
        let end = after.find(close)?;
        let path = simple_path(after[inner_start..end].trim())?;
        // A root is never a helper's name: `{{root...}}` is a value, not a call.
        if !crate::context::ROOTS.contains(&path[0].as_str()) {
            return None;
        }
        pieces.push(Piece::Path(path));
        rest = &after[end + close.len()..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    let same = pieces.len() == compiled.elements.len()
        && pieces
            .iter()
            .zip(&compiled.elements)
            .all(|(piece, element)| match (piece, element) {
                (Piece::Text(a), TemplateElement::RawString(b)) => a == b,
                (
                    Piece::Path(_),
                    TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h),
                ) => h.params.is_empty() && h.hash.is_empty() && !h.block,
                _ => false,
            });
    same.then_some(pieces)
}

/// Renders plain pieces as handlebars would (values as `JsonRender` writes
/// them, no escaping); `None` if a path is missing.
fn render_plain(pieces: &[Piece], data: &Value) -> Option<String> {
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
fn simple_path(path: &str) -> Option<Vec<String>> {
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
fn lookup<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(root, |value, segment| match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// `{{__typed_value path}}`: writes the value at `path` as JSON. In strict mode
/// a missing value is an error naming the path; otherwise it is `null`.
fn typed_value_helper(
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
fn default_helper(
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
struct SectionItems;

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

/// Rewrites Mustache sections over a path into Handlebars blocks (see
/// [`SECTION_HELPER`]); everything else is left as written.
fn mustache_sections(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("{{#") && !text.contains("{{^") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    // What each open block was: Some(closer) for a rewritten section.
    let mut open: Vec<(String, Option<&'static str>)> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let tag = &rest[at..];
        let Some(end) = tag.find("}}") else {
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
fn mentions_root(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
            && matches!(after, Some('.' | '[' | '}' | ' '))
    })
}

/// The first `{{…}}` expression of `text` that uses a `|` filter, Liquid or
/// Jinja style (`{{x | default: 'd'}}`). Handlebars' own `|` (block params,
/// `{{#each xs as |x|}}`) and `||` inside strings are not filters.
fn liquid_filter(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let inner = &after[..close];
        let body = inner.trim_start_matches(['{', '~', ' ']);
        let has_filter = inner.contains('|')
            && !inner.contains("||")
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

fn describe_render_error(e: &RenderError) -> String {
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

/// Renders the node-input string `text` against `data` through the plain
/// fast path (`None` when it does not apply or a path is missing) and through
/// handlebars alone; `None` if `text` is not a text template. For the
/// `template` fuzz target (cargo fuzz builds with `--cfg fuzzing`) and tests:
/// whenever the fast path answers, handlebars must answer the same.
#[cfg(any(test, fuzzing))]
#[allow(clippy::type_complexity)]
pub fn render_both_ways(
    text: &str,
    data: &Value,
    strict: bool,
) -> Option<(Option<String>, Result<String, String>)> {
    let mut templates = Templates::new("t.ygtc", strict);
    let compiled = templates
        .compile("n", ".f", &Value::String(text.into()))
        .ok()?;
    let InputTemplate::Text {
        name,
        field,
        expr,
        plain,
    } = &compiled
    else {
        return None;
    };
    let fast = plain.as_deref().and_then(|p| render_plain(p, data));
    let ctx = Context::from(data.clone());
    let slow = templates
        .render_named("n", name, field, expr, &ctx)
        .map_err(|e| e.reason);
    Some((fast, slow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn both(text: &str, data: &Value, strict: bool) -> (Option<String>, Result<String, String>) {
        render_both_ways(text, data, strict)
            .unwrap_or_else(|| panic!("`{text}` is not a text template"))
    }

    #[test]
    fn plain_text_templates_render_as_handlebars_does() {
        let data = json!({
            "entry": {"name": "Ada", "n": 7, "f": 1.5, "ok": true, "none": null,
                      "list": [1, "two", {"x": 1}, [3]], "obj": {"a": 1}, "dash-key": "d",
                      "0": "zero"},
            "prev": {"v": "<b>&amp;"},
            "node": {"n1": {"out": ["a", "b"]}},
            "state": {"step": 3},
        });
        let plain = [
            "Hi {{entry.name}}!",
            "{{entry.n}}-{{entry.f}}-{{entry.ok}}-[{{entry.none}}]",
            "{{entry.list}} / {{entry.obj}} / {{entry.list.1}} / {{entry.list.3}}",
            "{{{prev.v}}} {{prev.v}}",
            "{{ entry.name }}{{entry.dash-key}}{{entry.0}}",
            "step-{{state.step}} of {{node.n1.out}}",
            "a }} b {{entry.name}}",
        ];
        for text in plain {
            for strict in [true, false] {
                let (fast, slow) = both(text, &data, strict);
                assert!(fast.is_some(), "`{text}` takes the plain path");
                assert_eq!(fast.unwrap(), slow.unwrap(), "`{text}` (strict: {strict})");
            }
        }
        // A missing path leaves it to handlebars: an error in strict mode.
        let (fast, slow) = both("x {{entry.missing}} y", &data, true);
        assert_eq!(fast, None);
        assert!(slow.unwrap_err().contains("entry.missing"));
        let (fast, slow) = both("x {{entry.missing}} y", &data, false);
        assert_eq!((fast, slow.unwrap()), (None, "x  y".to_string()));
        // Not plain: helpers, blocks, whitespace control, escapes, other roots.
        for text in [
            "{{#if entry.ok}}y{{/if}}",
            "{{default entry.name \"x\"}} z",
            "a {{~entry.name}}",
            "\\{{entry.name}} {{entry.name}}",
            "{{this.entry}} x",
            "{{name}} x",
            "{{!comment}} {{entry.name}}",
        ] {
            let mut templates = Templates::new("t.ygtc", true);
            let compiled = templates
                .compile("n", ".f", &Value::String(text.into()))
                .unwrap();
            assert!(
                matches!(compiled, InputTemplate::Text { plain: None, .. }),
                "`{text}` is not plain: {compiled:?}"
            );
        }
    }
}
