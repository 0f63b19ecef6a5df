//! Routing conditions: a small expression language, parsed when the flow loads.
//!
//! ```text
//! expr    := or
//! or      := and ( "||" and )*
//! and     := unary ( "&&" unary )*
//! unary   := "!" unary | compare
//! compare := operand ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" ) operand )?
//! operand := path | literal | "(" expr ")"
//! path    := ident ( "." ident | "." digits | "[" digits "]" )*
//! literal := number | "string" | 'string' | true | false | null
//! ```
//!
//! Paths start at a root of the run context: `out` (this node's output),
//! `event` (its outcome: the output's `outcome`, else `on_success`-like on
//! success and `on_error`-like on failure), `entry`, `in`, `prev`, `node`,
//! `state`, `vars`, `parameters`, `now`. A missing path is `null`.
//! `a contains b` is a case-insensitive substring test on strings, element
//! membership on arrays and key presence on objects. `==`/`!=` compare
//! JSON values (numbers by value, so `1 == 1.0`); `<`-style operators compare two
//! numbers or two strings, anything else is an error. An operand on its own is
//! tested for truthiness as in Handlebars' `{{#if}}`: `false`, `null`, `0`, `""`,
//! `[]` and `{}` are false. The whole condition may be wrapped in `{{ }}`.

use handlebars::JsonTruthy;
use serde_json::Value;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    Literal(Value),
    Path(Vec<Segment>),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Compare(Box<Condition>, CompareOp, Box<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `a contains b`: substring (ASCII case-insensitive, as greentic-runner),
    /// array element, or object key; false for anything else.
    Contains,
}

impl Condition {
    /// Parses a condition; the error says what was expected where.
    pub(crate) fn parse(text: &str) -> Result<Condition, String> {
        let trimmed = text.trim();
        let body = trimmed
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
            .unwrap_or(trimmed);
        let tokens = tokenize(body)?;
        let mut parser = Parser { tokens, pos: 0 };
        let expr = parser.or()?;
        match parser.peek() {
            None => Ok(expr),
            Some(t) => Err(format!("unexpected `{}`", t.text())),
        }
    }

    /// Evaluates to a boolean against `root` (an object holding the roots).
    pub(crate) fn is_true(&self, root: &Value) -> Result<bool, String> {
        Ok(self.eval(root)?.is_truthy(false))
    }

    fn eval(&self, root: &Value) -> Result<Value, String> {
        Ok(match self {
            Condition::Literal(v) => v.clone(),
            Condition::Path(segments) => lookup(root, segments).cloned().unwrap_or(Value::Null),
            Condition::Not(inner) => Value::Bool(!inner.is_true(root)?),
            Condition::And(a, b) => Value::Bool(a.is_true(root)? && b.is_true(root)?),
            Condition::Or(a, b) => Value::Bool(a.is_true(root)? || b.is_true(root)?),
            Condition::Compare(a, op, b) => {
                Value::Bool(compare(&a.eval(root)?, *op, &b.eval(root)?)?)
            }
        })
    }

    /// Root names this condition reads, for validation at load time.
    pub(crate) fn roots(&self, out: &mut Vec<String>) {
        match self {
            Condition::Path(segments) => {
                if let Some(Segment::Key(k)) = segments.first() {
                    out.push(k.clone());
                }
            }
            Condition::Not(a) => a.roots(out),
            Condition::And(a, b) | Condition::Or(a, b) | Condition::Compare(a, _, b) => {
                a.roots(out);
                b.roots(out);
            }
            Condition::Literal(_) => {}
        }
    }
}

fn lookup<'a>(root: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    segments.iter().try_fold(root, |v, seg| match (seg, v) {
        (Segment::Key(k), Value::Object(map)) => map.get(k),
        (Segment::Key(k), Value::Array(items)) => {
            k.parse::<usize>().ok().and_then(|i| items.get(i))
        }
        (Segment::Index(i), Value::Array(items)) => items.get(*i),
        _ => None,
    })
}

fn compare(a: &Value, op: CompareOp, b: &Value) -> Result<bool, String> {
    match op {
        CompareOp::Eq => Ok(json_eq(a, b)),
        CompareOp::Ne => Ok(!json_eq(a, b)),
        CompareOp::Contains => Ok(match (a, b) {
            (Value::String(hay), Value::String(needle)) => hay
                .to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase()),
            (Value::Array(items), needle) => items.iter().any(|i| json_eq(i, needle)),
            (Value::Object(map), Value::String(key)) => map.contains_key(key),
            _ => false,
        }),
        _ => {
            let ordering = match (a, b) {
                (Value::Number(x), Value::Number(y)) => x
                    .as_f64()
                    .zip(y.as_f64())
                    .and_then(|(x, y)| x.partial_cmp(&y)),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                _ => None,
            }
            .ok_or_else(|| format!("cannot order {} and {}", kind(a), kind(b)))?;
            Ok(match op {
                CompareOp::Lt => ordering.is_lt(),
                CompareOp::Le => ordering.is_le(),
                CompareOp::Gt => ordering.is_gt(),
                CompareOp::Ge => ordering.is_ge(),
                CompareOp::Eq | CompareOp::Ne | CompareOp::Contains => unreachable!(),
            })
        }
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Number(Value),
    Str(String),
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Not,
    And,
    Or,
    Op(CompareOp),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Number(n) => n.to_string(),
            Token::Str(s) => format!("{s:?}"),
            Token::Dot => ".".into(),
            Token::LBracket => "[".into(),
            Token::RBracket => "]".into(),
            Token::LParen => "(".into(),
            Token::RParen => ")".into(),
            Token::Not => "!".into(),
            Token::And => "&&".into(),
            Token::Or => "||".into(),
            Token::Op(op) => match op {
                CompareOp::Eq => "==",
                CompareOp::Ne => "!=",
                CompareOp::Lt => "<",
                CompareOp::Le => "<=",
                CompareOp::Gt => ">",
                CompareOp::Ge => ">=",
                CompareOp::Contains => "contains",
            }
            .into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let two = |t: Token| (t, 2);
        let (token, len) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('=', Some('=')) => two(Token::Op(CompareOp::Eq)),
            ('!', Some('=')) => two(Token::Op(CompareOp::Ne)),
            ('<', Some('=')) => two(Token::Op(CompareOp::Le)),
            ('>', Some('=')) => two(Token::Op(CompareOp::Ge)),
            ('&', Some('&')) => two(Token::And),
            ('|', Some('|')) => two(Token::Or),
            ('<', _) => (Token::Op(CompareOp::Lt), 1),
            ('>', _) => (Token::Op(CompareOp::Gt), 1),
            ('!', _) => (Token::Not, 1),
            ('.', _) => (Token::Dot, 1),
            ('[', _) => (Token::LBracket, 1),
            (']', _) => (Token::RBracket, 1),
            ('(', _) => (Token::LParen, 1),
            (')', _) => (Token::RParen, 1),
            ('"' | '\'', _) => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&ch| ch == c)
                    .ok_or_else(|| format!("unterminated string starting at column {}", i + 1))?;
                let s: String = chars[i + 1..i + 1 + end].iter().collect();
                (Token::Str(s), end + 2)
            }
            (c, _)
                if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                let len = 1 + chars[i + 1..]
                    .iter()
                    .take_while(|ch| {
                        ch.is_ascii_digit() || matches!(ch, '.' | 'e' | 'E' | '+' | '-')
                    })
                    .count();
                let s: String = chars[i..i + len].iter().collect();
                // Digits right after a dot are a path index (`items.0`), kept as an identifier.
                if matches!(tokens.last(), Some(Token::Dot)) {
                    let digits = s.chars().take_while(char::is_ascii_digit).count();
                    (Token::Ident(s[..digits].to_string()), digits)
                } else {
                    let n: Value =
                        serde_json::from_str(&s).map_err(|_| format!("bad number `{s}`"))?;
                    (Token::Number(n), len)
                }
            }
            (c, _) if c.is_alphanumeric() || c == '_' || c == '@' || c == '-' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-' | '@'))
                    .count();
                (Token::Ident(chars[i..i + len].iter().collect()), len)
            }
            (c, _) => return Err(format!("unexpected character `{c}`")),
        };
        tokens.push(token);
        i += len;
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut left = self.and()?;
        while self.eat(&Token::Or) {
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut left = self.unary()?;
        while self.eat(&Token::And) {
            left = Condition::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, String> {
        if self.eat(&Token::Not) {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Token::Op(op)) => Some(*op),
            Some(Token::Ident(word)) if word == "contains" => Some(CompareOp::Contains),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            let right = self.operand()?;
            return Ok(Condition::Compare(Box::new(left), op, Box::new(right)));
        }
        Ok(left)
    }

    fn operand(&mut self) -> Result<Condition, String> {
        match self.next() {
            Some(Token::LParen) => {
                let inner = self.or()?;
                if !self.eat(&Token::RParen) {
                    return Err("expected `)`".into());
                }
                Ok(inner)
            }
            Some(Token::Number(n)) => Ok(Condition::Literal(n)),
            Some(Token::Str(s)) => Ok(Condition::Literal(Value::String(s))),
            Some(Token::Ident(id)) => match id.as_str() {
                "true" => Ok(Condition::Literal(Value::Bool(true))),
                "false" => Ok(Condition::Literal(Value::Bool(false))),
                "null" => Ok(Condition::Literal(Value::Null)),
                _ => self.path(id),
            },
            Some(t) => Err(format!("expected a value, found `{}`", t.text())),
            None => Err("expected a value, found the end".into()),
        }
    }

    fn path(&mut self, first: String) -> Result<Condition, String> {
        let mut segments = vec![Segment::Key(first)];
        loop {
            if self.eat(&Token::Dot) {
                match self.next() {
                    Some(Token::Ident(id)) => segments.push(match id.parse::<usize>() {
                        Ok(i) => Segment::Index(i),
                        Err(_) => Segment::Key(id),
                    }),
                    _ => return Err("expected a name after `.`".into()),
                }
            } else if self.eat(&Token::LBracket) {
                match (self.next(), self.next()) {
                    (Some(Token::Number(n)), Some(Token::RBracket)) if n.is_u64() => {
                        segments.push(Segment::Index(n.as_u64().unwrap() as usize))
                    }
                    (Some(Token::Str(s)), Some(Token::RBracket)) => segments.push(Segment::Key(s)),
                    _ => return Err("expected `[index]` or `[\"key\"]`".into()),
                }
            } else {
                return Ok(Condition::Path(segments));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(cond: &str, root: &Value) -> bool {
        Condition::parse(cond).unwrap().is_true(root).unwrap()
    }

    #[test]
    fn equality_and_truthiness() {
        let root = json!({"out": {"status": "ok", "count": 2, "items": [1, 2], "empty": [], "flag": false}});
        assert!(check("out.status == 'ok'", &root));
        assert!(check("out.status == \"ok\"", &root));
        assert!(!check("out.status != 'ok'", &root));
        assert!(check("out.count == 2.0", &root));
        assert!(check("out.count >= 2 && out.count < 3", &root));
        assert!(check("out.items", &root));
        assert!(!check("out.empty", &root));
        assert!(!check("out.flag", &root));
        assert!(check("!out.flag", &root));
        assert!(!check("out.missing.deeper", &root));
        assert!(check("out.missing == null", &root));
        assert!(check("out.items[1] == 2 && out.items.0 == 1", &root));
        assert!(check("(out.flag || out.count == 2) && true", &root));
        assert!(check("{{ out.status == 'ok' }}", &root));
    }

    #[test]
    fn parse_errors_are_described() {
        assert!(
            Condition::parse("out.status ==")
                .unwrap_err()
                .contains("expected a value")
        );
        assert!(
            Condition::parse("out.status = 'x'")
                .unwrap_err()
                .contains("unexpected")
        );
        assert!(
            Condition::parse("'open")
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(Condition::parse("(a").unwrap_err().contains("`)`"));
    }

    #[test]
    fn ordering_mismatched_types_is_an_error() {
        let c = Condition::parse("out.a < 3").unwrap();
        let err = c.is_true(&json!({"out": {"a": "x"}})).unwrap_err();
        assert!(err.contains("cannot order a string and a number"), "{err}");
    }
}
