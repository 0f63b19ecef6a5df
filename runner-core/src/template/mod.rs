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

use std::sync::OnceLock;

use handlebars::{Context, Handlebars, RenderContext, Renderable, StringOutput, Template};
use serde_json::Value;

use crate::context::ContextNeeds;
use crate::error::TemplateError;

mod helpers;
mod plain;

use helpers::{
    DEFAULT_HELPER, SECTION_HELPER, SectionItems, TYPED_HELPER, default_helper,
    describe_render_error, has, liquid_filter, mentions_root, mustache_sections,
    typed_value_helper,
};
use plain::{Piece, lookup, render_plain, scan_plain, simple_path, single_path_expression};

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
    /// renders by direct lookup, and through handlebars only if a path is
    /// missing; handlebars compiles such a text (`source`) only then.
    Text {
        field: String,
        expr: String,
        plain: Option<Vec<Piece>>,
        source: String,
        compiled: OnceLock<Box<Template>>,
    },
    Array(Vec<InputTemplate>),
    Object(Vec<(String, InputTemplate)>),
}

impl InputTemplate {
    fn is_literal(&self) -> bool {
        matches!(self, InputTemplate::Literal(_))
    }

    /// The literal string under the first of `keys` present in an object
    /// template (e.g. a `flow.call`'s `flow` when it is not templated).
    pub(crate) fn literal_field(&self, keys: &[&str]) -> Option<String> {
        let entries = match self {
            InputTemplate::Object(entries) => entries,
            InputTemplate::Literal(Value::Object(map)) => {
                return keys
                    .iter()
                    .find_map(|key| map.get(*key).and_then(Value::as_str).map(str::to_string));
            }
            _ => return None,
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
            .any(|r| has(text, r));
        needs.now |= mentions_root(text, "now");
        needs.entry_input |= has(text, "input");
    }

    /// Compiles a node input tree. `field` is the path of `value` for messages.
    pub(crate) fn compile(
        &mut self,
        node: &str,
        field: &str,
        value: &Value,
    ) -> Result<InputTemplate, TemplateError> {
        let compiled = match value {
            Value::String(s) if has(s, "{{") => self.compile_string(node, field, s)?,
            Value::Array(items) => InputTemplate::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.compile_within(node, v, || format!("{field}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => InputTemplate::Object(
                map.iter()
                    .map(|(k, v)| {
                        let compiled = self.compile_within(node, v, || format!("{field}.{k}"))?;
                        Ok((k.clone(), compiled))
                    })
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => InputTemplate::Literal(other.clone()),
        };
        // A tree without templates renders as one copy of itself.
        let literal = match &compiled {
            InputTemplate::Array(items) => items.iter().all(InputTemplate::is_literal),
            InputTemplate::Object(entries) => entries.iter().all(|(_, t)| t.is_literal()),
            _ => false,
        };
        Ok(if literal {
            InputTemplate::Literal(value.clone())
        } else {
            compiled
        })
    }

    /// Compiles a part of an input; its path is only spelled out when the
    /// part may hold a template (most leaves are literals).
    fn compile_within(
        &mut self,
        node: &str,
        value: &Value,
        field: impl FnOnce() -> String,
    ) -> Result<InputTemplate, TemplateError> {
        match value {
            Value::String(s) if !has(s, "{{") => Ok(InputTemplate::Literal(value.clone())),
            Value::Null | Value::Bool(_) | Value::Number(_) => {
                Ok(InputTemplate::Literal(value.clone()))
            }
            _ => self.compile(node, &field(), value),
        }
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
        // Most templates are plain paths in text: no parser needed.
        if let Some(mut pieces) = scan_plain(&rewritten) {
            return Ok(match pieces.as_mut_slice() {
                [Piece::Path(path)] => InputTemplate::Lookup {
                    path: std::mem::take(path),
                    field: field.to_string(),
                    expr: text.to_string(),
                },
                _ => text_template(field, text, &rewritten, Some(pieces), None),
            });
        }
        let compiled = compile_handlebars(&rewritten).map_err(error)?;
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
            Ok(text_template(field, text, &rewritten, None, Some(compiled)))
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
                field,
                expr,
                plain,
                source,
                compiled,
            } => match plain.as_deref().and_then(|p| render_plain(p, ctx.data())) {
                Some(text) => Value::String(text),
                // A missing path: handlebars says what that means (an error
                // in strict mode, empty text otherwise).
                None => Value::String(self.render_text(node, field, expr, source, compiled, ctx)?),
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

    /// Renders a text template through handlebars, compiling it first if
    /// it was read as plain pieces (it compiles: its pieces are all plain).
    fn render_text(
        &self,
        node: &str,
        field: &str,
        expr: &str,
        source: &str,
        compiled: &OnceLock<Box<Template>>,
        ctx: &Context,
    ) -> Result<String, TemplateError> {
        let template = match compiled.get() {
            Some(template) => template,
            None => {
                let template = compile_handlebars(source)
                    .map_err(|reason| self.render_error(node, field, expr, reason))?;
                compiled.get_or_init(|| Box::new(template))
            }
        };
        let mut out = StringOutput::new();
        template
            .render(&self.registry, ctx, &mut RenderContext::new(None), &mut out)
            .and_then(|()| out.into_string().map_err(Into::into))
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

/// Compiles `source` with handlebars; a syntax error as a message with its
/// line and column.
fn compile_handlebars(source: &str) -> Result<Template, String> {
    Template::compile(source).map_err(|e| {
        let at = e
            .pos()
            .map(|(l, c)| format!(" at {l}:{c}"))
            .unwrap_or_default();
        // pest lists every rule it expected; the position says more.
        let reason = e.reason().to_string();
        let reason = reason.split(": expected").next().unwrap_or(&reason);
        format!("syntax error{at}: {reason}")
    })
}

/// A text template; `compiled` is handlebars' reading when it was needed to
/// tell what the text is, else it is compiled on first use.
fn text_template(
    field: &str,
    text: &str,
    source: &str,
    plain: Option<Vec<Piece>>,
    compiled: Option<Template>,
) -> InputTemplate {
    InputTemplate::Text {
        field: field.to_string(),
        expr: text.to_string(),
        plain,
        source: source.to_string(),
        compiled: compiled
            .map(|t| OnceLock::from(Box::new(t)))
            .unwrap_or_default(),
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
        field,
        expr,
        plain,
        source,
        ..
    } = &compiled
    else {
        return None;
    };
    let fast = plain.as_deref().and_then(|p| render_plain(p, data));
    // Handlebars' own reading, compiled here: a plain text holds none yet.
    let handlebars = compile_handlebars(source);
    if let (Some(pieces), Ok(template)) = (plain, &handlebars)
        && !plain::same_as_compiled(pieces, template)
    {
        let differs = format!("handlebars reads `{source}` as other pieces than the plain scan");
        return Some((fast, Err(differs)));
    }
    let ctx = Context::from(data.clone());
    let slow = handlebars.and_then(|template| {
        templates
            .render_text(
                "n",
                field,
                expr,
                source,
                &OnceLock::from(Box::new(template)),
                &ctx,
            )
            .map_err(|e| e.reason)
    });
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
    fn byte_search_finds_what_std_finds() {
        let texts = [
            "",
            "{",
            "{{",
            "a{{b}}{{",
            "é{{x}}ü{{",
            "state.entry in input",
            "ééé",
        ];
        let needles = ["{{", "}}", "input", "é", "ü{{", "state.entry", "x"];
        for text in texts {
            for needle in needles {
                let ours: Vec<usize> = helpers::find_all(text, needle).collect();
                let std: Vec<usize> = text.match_indices(needle).map(|(at, _)| at).collect();
                // std's matches do not overlap; ours do ("{{{" holds "{{" twice).
                assert!(
                    std.iter().all(|at| ours.contains(at)),
                    "{text:?} {needle:?}"
                );
                assert_eq!(
                    has(text, needle),
                    text.contains(needle),
                    "{text:?} {needle:?}"
                );
                assert_eq!(
                    helpers::find(text, needle),
                    text.find(needle),
                    "{text:?} {needle:?}"
                );
                assert!(ours.iter().all(|&at| text[at..].starts_with(needle)));
            }
        }
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

    /// The plain scan reads a text without handlebars' parser: whatever it
    /// accepts, handlebars must read as the same pieces, and the tricky
    /// neighbours of a tag are refused (left to handlebars).
    #[test]
    fn the_plain_scan_accepts_only_what_handlebars_reads_the_same() {
        let accepted = [
            "{{entry.a}}",
            "{{{ entry.a }}}",
            "x {{ entry.a\n}} y {{prev}}",
            "a }} b {{entry.name}} }",
            "{{entry.a-b.0}}{{state.step}}",
        ];
        let refused = [
            "{{entry.a}}}",
            "{{{entry.a}}}}",
            "{{{{entry.a}}}}",
            "x{{{entry.a}}",
            "{ {{entry.a}}",
            "{{entry.a}} {",
            "{{\u{a0}entry.a}}",
            "{{entry..a}}",
            "{{entry.a.}}",
            "{{entry/a}}",
            "{{else}}",
            "{{name}}",
            "{{entry.a",
            "{{~entry.a}}",
            "\\{{entry.a}}",
        ];
        for text in accepted {
            let pieces = plain::scan_plain(text).unwrap_or_else(|| panic!("`{text}` is plain"));
            let compiled = Template::compile(text).expect("handlebars compiles it");
            assert!(
                plain::same_as_compiled(&pieces, &compiled),
                "`{text}`: {pieces:?} vs {:?}",
                compiled.elements
            );
        }
        for text in refused {
            assert!(
                plain::scan_plain(text).is_none(),
                "`{text}` is left to handlebars"
            );
        }
        // A plain text with a missing path is compiled when it is rendered,
        // and says where the path is.
        let data = json!({"entry": {"a": 1}});
        let (fast, slow) = both("x\n {{entry.b}}", &data, true);
        assert_eq!(fast, None);
        assert_eq!(slow.unwrap_err(), "missing variable `entry.b` at 2:2");
        let (fast, slow) = both("x\n {{entry.b}}", &data, false);
        assert_eq!((fast, slow.unwrap()), (None, "x\n ".to_string()));
    }
}
