//! YAML reading: parse errors with positions, the unquoted-`{{expr}}` repair,
//! and a best-effort line lookup for nodes.

use serde_yaml::{Mapping, Value};

use crate::error::{FlowError, Position};

/// Parses a flow document, turning unquoted `{{expr}}` scalars back into strings.
pub(crate) fn parse(file: &str, text: &str) -> Result<Value, FlowError> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Position {
                line: Some(l.line() as u32),
                column: Some(l.column() as u32),
            })
            .unwrap_or_default();
        let mut message = e.to_string();
        // serde_yaml appends " at line X column Y"; the position is already in front.
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        let line_text = pos
            .line
            .and_then(|l| text.lines().nth(l as usize - 1))
            .unwrap_or("");
        if line_text.contains("{{") {
            message.push_str(
                " (a template mixed with other text must be quoted: `key: \"a {{x}} b\"`)",
            );
        }
        FlowError::Yaml {
            file: file.to_string(),
            pos,
            message,
        }
    })?;
    repair_unquoted_templates(&mut value);
    Ok(value)
}

/// YAML reads an unquoted `{{a.b}}` as the flow mapping `{{a.b: null}: null}`
/// (and `{{{a}}}` one level deeper). Seed 001 writes templates that way, so we
/// turn such values back into the template text they were meant to be. Keys
/// are left alone: they are never templated.
fn repair_unquoted_templates(value: &mut Value) {
    if let Some(text) = unquoted_template(value) {
        *value = Value::String(text);
        return;
    }
    match value {
        Value::Mapping(map) => map.values_mut().for_each(repair_unquoted_templates),
        Value::Sequence(items) => items.iter_mut().for_each(repair_unquoted_templates),
        Value::Tagged(tagged) => repair_unquoted_templates(&mut tagged.value),
        _ => {}
    }
}

fn unquoted_template(value: &Value) -> Option<String> {
    let mut depth = 0;
    let mut current = value;
    while let Some((key, Value::Null)) = single_entry(current) {
        depth += 1;
        current = key;
    }
    let inner = match current {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    match depth {
        2 => Some(format!("{{{{{inner}}}}}")),
        3 => Some(format!("{{{{{{{inner}}}}}}}")),
        _ => None,
    }
}

fn single_entry(value: &Value) -> Option<(&Value, &Value)> {
    match value {
        Value::Mapping(map) if map.len() == 1 => map.iter().next(),
        _ => None,
    }
}

/// Best-effort position of `nodes.<id>` in the text: serde_yaml keeps no spans
/// for values, so we look for the first indented `<id>:` after `nodes:`.
pub(crate) fn node_position(text: &str, id: &str) -> Position {
    let mut in_nodes = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            in_nodes = trimmed.starts_with("nodes:");
            continue;
        }
        if in_nodes && indent > 0 {
            // Up to the first `:` (none: not a key), quotes around it dropped.
            let raw = trimmed.split(':').next().unwrap_or("");
            let key = raw.trim_matches(|c| c == '"' || c == '\'');
            if key == id && trimmed.len() > raw.len() {
                return Position {
                    line: Some(index as u32 + 1),
                    column: Some(indent as u32 + 1),
                };
            }
        }
    }
    Position::default()
}

/// Best-effort position of a template of node `id`: the first line at or
/// after the node's key holding the template's first line, the column moved
/// to where handlebars places the fault (`… at 1:19` in `reason`) when that
/// is on the same line; else the node's position.
pub(crate) fn template_position(text: &str, id: &str, expr: &str, reason: &str) -> Position {
    let node = node_position(text, id);
    let Some(start) = node.line else {
        return node;
    };
    let first = expr.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return node;
    }
    let found = text
        .lines()
        .enumerate()
        .skip(start as usize - 1)
        .find_map(|(index, line)| {
            line.find(first)
                .map(|at| (index, line[..at].chars().count()))
        });
    let Some((index, before)) = found else {
        return node;
    };
    // handlebars: "… at LINE:COLUMN" inside the template.
    let inner = reason
        .rsplit_once(" at ")
        .and_then(|(_, at)| at.split(|c: char| c != ':' && !c.is_ascii_digit()).next())
        .and_then(|at| at.trim_end_matches(':').split_once(':'))
        .and_then(|(l, c)| Some((l.parse::<u32>().ok()?, c.parse::<u32>().ok()?)));
    let column = match inner {
        Some((1, c)) if c >= 1 => before as u32 + c,
        _ => before as u32 + 1,
    };
    Position {
        line: Some(index as u32 + 1),
        column: Some(column),
    }
}

/// Converts YAML to JSON. Scalar keys (numbers, bools) become strings; other
/// keys and non-finite numbers are errors naming the path.
pub(crate) fn to_json(value: &Value, path: &str) -> Result<serde_json::Value, String> {
    use serde_json::Value as Json;
    Ok(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Json::Number)
                    .ok_or_else(|| format!("`{path}` is {f}, which JSON cannot represent"))?
            }
        }
        Value::String(s) => Json::String(s.clone()),
        Value::Sequence(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => key_str(k),
                    other => {
                        return Err(format!(
                            "`{path}` has the key `{}`, but keys must be strings (quote it)",
                            key_str(other)
                        ));
                    }
                };
                let child = to_json(v, &format!("{path}.{key}"))?;
                out.insert(key, child);
            }
            Json::Object(out)
        }
        Value::Tagged(tagged) => to_json(&tagged.value, path)?,
    })
}

/// Renders a key for messages.
pub(crate) fn key_str(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Gets a string-keyed entry from a mapping.
pub(crate) fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    map.get(Value::String(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `flow_load` fuzz target: a quoted node id with non-ASCII
    /// letters made the position lookup slice inside a character (a panic,
    /// so the runner component trapped instead of reporting the node).
    #[test]
    fn a_quoted_non_ascii_node_id_is_located_without_a_panic() {
        let text = "id: f\nnodes:\n  'ÙØØ': {}\n  \"été\":\n    x: 1\n";
        let at = |id| node_position(text, id);
        assert_eq!(at("ÙØØ").line, Some(3));
        assert_eq!(at("été").line, Some(4));
        assert_eq!(at("Ù").line, None);
    }

    #[test]
    fn unquoted_template_becomes_string() {
        let v = parse(
            "f.yaml",
            "a: {{node.start.user.id}}\nb: [ {{x}} ]\nc: {{{raw}}}\n",
        )
        .unwrap();
        assert_eq!(v["a"], Value::String("{{node.start.user.id}}".into()));
        assert_eq!(v["b"][0], Value::String("{{x}}".into()));
        assert_eq!(v["c"], Value::String("{{{raw}}}".into()));
    }

    #[test]
    fn real_nested_mappings_are_kept() {
        let v = parse("f.yaml", "a: {x: 1}\nb: {x: null}\n").unwrap();
        assert_eq!(v["a"]["x"], Value::Number(1.into()));
        assert!(v["b"].is_mapping());
    }

    #[test]
    fn syntax_error_has_position_and_hint() {
        let err = parse("f.yaml", "a: 1\nb: {{x}} and more\n").unwrap_err();
        match err {
            FlowError::Yaml { pos, message, .. } => {
                assert_eq!(pos.line, Some(2));
                assert!(message.contains("must be quoted"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_conversion_names_bad_keys() {
        let v = parse("f.yaml", "a: {1: x, true: y, s: [1.5]}\n").unwrap();
        assert_eq!(
            to_json(&v, "input").unwrap(),
            serde_json::json!({"a": {"1": "x", "true": "y", "s": [1.5]}})
        );
        let v = parse("f.yaml", "a:\n  null: x\n").unwrap();
        let err = to_json(&v, "input").unwrap_err();
        assert_eq!(
            err,
            "`input.a` has the key `null`, but keys must be strings (quote it)"
        );
    }

    #[test]
    fn finds_a_templates_line_and_the_faults_column() {
        let text =
            "id: x\nnodes:\n  a:\n    echo:\n      ok: \"{{x}}\"\n      bad: \"{{#if x}}yes\"\n";
        let pos = template_position(text, "a", "{{#if x}}yes", "syntax error at 1:13: invalid");
        assert_eq!((pos.line, pos.column), (Some(6), Some(13 + 12)));
        // Not found in the text: the node's line.
        let pos = template_position(text, "a", "{{nowhere}}", "x");
        assert_eq!(pos.line, Some(3));
    }

    #[test]
    fn finds_node_line() {
        let text = "id: x\nnodes:\n  # c\n  start:\n    echo: {}\n  next:\n    echo: {}\n";
        assert_eq!(node_position(text, "next").line, Some(6));
        assert_eq!(node_position(text, "start").line, Some(4));
        assert_eq!(node_position(text, "missing").line, None);
    }
}
