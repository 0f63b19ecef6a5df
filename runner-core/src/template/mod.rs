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

use handlebars::{Context, Handlebars, Template};
use serde_json::Value;

use crate::context::ContextNeeds;
use crate::error::TemplateError;

mod helpers;
mod plain;

use helpers::{
    DEFAULT_HELPER, SECTION_HELPER, SectionItems, TYPED_HELPER, default_helper,
    describe_render_error, liquid_filter, mentions_root, mustache_sections, typed_value_helper,
};
use plain::{Piece, lookup, plain_pieces, render_plain, simple_path, single_path_expression};

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
