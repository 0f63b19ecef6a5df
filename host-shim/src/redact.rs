//! What a server tells a client about a failure: the same message the CLI
//! prints, minus the server's file system. A path under the served directory
//! becomes relative to it (`hello.yaml`, `support/flow.yaml`); any other
//! absolute path (the component cache, the build's output, a home
//! directory) is reduced to its file name. The full message goes to the log.

use std::path::Path;

/// `text` with absolute paths made relative to `root` or cut to file names.
pub fn without_paths(text: &str, root: &Path) -> String {
    let root = root.to_string_lossy();
    let root = root.trim_end_matches('/');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(offset) = rest.find('/') {
        let (before, from_slash) = rest.split_at(offset);
        out.push_str(before);
        let before_slash = before.chars().last().or(previous);
        if !starts_a_path(before_slash) {
            out.push('/');
            previous = Some('/');
            rest = &from_slash[1..];
            continue;
        }
        let end = from_slash.find(ends_a_path).unwrap_or(from_slash.len());
        let (path, after) = from_slash.split_at(end);
        out.push_str(&public_form(path, root));
        previous = path.chars().last();
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A `/` begins an absolute path at the start of the text or after a space,
/// a quote or an opening bracket — not inside `a/b` or `http://`.
fn starts_a_path(before: Option<char>) -> bool {
    match before {
        None => true,
        Some(c) => c.is_whitespace() || matches!(c, '`' | '\'' | '"' | '(' | '[' | '{' | '=' | '<'),
    }
}

/// A path runs to a space, a quote, a closing bracket, `:` (before a line
/// number) or `,`.
fn ends_a_path(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '`' | '\'' | '"' | ')' | ']' | '}' | '>' | ':' | ',' | ';'
        )
}

fn public_form(path: &str, root: &str) -> String {
    // `/x` alone (a route, a root) says nothing about the machine.
    if path.len() <= 1 || !path[1..].contains('/') {
        return path.to_string();
    }
    if !root.is_empty()
        && let Some(inside) = path.strip_prefix(root).and_then(|p| p.strip_prefix('/'))
        && !inside.is_empty()
    {
        return inside.to_string();
    }
    let trimmed = path.trim_end_matches(['/', '.']);
    match trimmed.rsplit('/').next() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => "…".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_paths;
    use std::path::Path;

    #[test]
    fn paths_under_the_served_directory_become_relative() {
        let root = Path::new("/srv/flows");
        assert_eq!(
            without_paths("/srv/flows/hello.yaml: node `greet`: bad", root),
            "hello.yaml: node `greet`: bad"
        );
        assert_eq!(
            without_paths("in `/srv/flows/support/a.ygtc`:3:5", root),
            "in `support/a.ygtc`:3:5"
        );
    }

    #[test]
    fn other_absolute_paths_keep_only_their_file_name() {
        let root = Path::new("/srv/flows");
        let text = "cannot read /home/ops/.cache/greentic/components/ab12/qa.wasm (denied); \
                    also '/srv/flowsX/secret.yaml'";
        assert_eq!(
            without_paths(text, root),
            "cannot read qa.wasm (denied); also 'secret.yaml'"
        );
    }

    #[test]
    fn urls_relative_paths_and_routes_are_left_alone() {
        let root = Path::new("/srv/flows");
        let text = "GET http://127.0.0.1:9/a/b failed; see flows/x.yaml, GET /healthz or /";
        assert_eq!(without_paths(text, root), text);
    }
}
