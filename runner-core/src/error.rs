//! Errors, one enum per operation: [`FlowError`] for loading a flow,
//! [`RunError`] for running one. Messages are one line and name the flow file,
//! the node and the cause.

use thiserror::Error;

/// Where in the flow file something is, as far as we know it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, ":{l}:{c}"),
            (Some(l), None) => write!(f, ":{l}"),
            _ => Ok(()),
        }
    }
}

/// A template that failed to compile or to render.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{file}: node `{node}`, field `{field}`: {reason} in template `{expr}`")]
pub struct TemplateError {
    /// The flow's name (its file path).
    pub file: String,
    /// The node whose input holds the template.
    pub node: String,
    /// Path of the field inside the node input, e.g. `input.user.id` or `input.items[1]`.
    pub field: String,
    /// The template text as written.
    pub expr: String,
    /// What went wrong (from handlebars, with its position inside the template).
    pub reason: String,
}

/// Loading a flow failed: the document is not YAML, not a valid YGTC flow, or a
/// template or condition in it does not compile.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowError {
    /// The document is not valid YAML.
    #[error("{file}{pos}: invalid YAML: {message}")]
    Yaml {
        /// The flow's name.
        file: String,
        /// Position given by the YAML parser.
        pos: Position,
        /// Parser message.
        message: String,
    },
    /// The document is YAML but not a valid flow.
    #[error("{file}{pos}: {}{message}", node.as_ref().map(|n| format!("node `{n}`: ")).unwrap_or_default())]
    Invalid {
        /// The flow's name.
        file: String,
        /// The node concerned, if any.
        node: Option<String>,
        /// Best known position of the node or key.
        pos: Position,
        /// What is wrong.
        message: String,
    },
    /// A resolve sidecar is unusable.
    #[error("{file}.{suffix}: {message}")]
    Sidecar {
        /// The flow's name.
        file: String,
        /// Which sidecar: `resolve.json` or `resolve.summary.json`.
        suffix: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A template does not compile; where it is in the file, when known
    /// (for editors: the message names node and field).
    #[error("{0}")]
    Template(Box<TemplateError>, Position),
}

impl From<TemplateError> for FlowError {
    fn from(error: TemplateError) -> Self {
        FlowError::Template(Box::new(error), Position::default())
    }
}

/// Running a flow failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunError {
    /// The flow did not load.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The entry payload is not valid JSON.
    #[error("invalid entry JSON: {0}")]
    InvalidInput(String),
    /// A node input failed to render.
    #[error(transparent)]
    Template(TemplateError),
    /// A routing condition could not be evaluated.
    #[error("{file}: node `{node}`: routing condition `{condition}`: {reason}")]
    Condition {
        /// The flow's name.
        file: String,
        /// The node whose routing holds the condition.
        node: String,
        /// The condition text.
        condition: String,
        /// What went wrong.
        reason: String,
    },
    /// The run executed more steps than allowed: most likely a routing loop.
    #[error(
        "{file}: node `{node}`: step limit of {limit} reached (routing loop?); raise `max_steps` if the flow really needs more"
    )]
    StepLimit {
        /// The flow's name.
        file: String,
        /// The node that would have run next.
        node: String,
        /// The limit in force.
        limit: u32,
    },
    /// A node component returned an error.
    #[error("{file}: node `{node}` (component `{component}`) failed{}: [{code}] {message}", if *attempts > 1 { format!(" after {attempts} attempts") } else { String::new() })]
    Node {
        /// The flow's name.
        file: String,
        /// The failing node.
        node: String,
        /// Its component reference.
        component: String,
        /// The component's error code.
        code: String,
        /// The component's message.
        message: String,
        /// Whether the component flagged the error as retryable.
        retryable: bool,
        /// Attempts made, the first included.
        attempts: u32,
    },
    /// A node component answered with something that is not a usable output.
    #[error("{file}: node `{node}` (component `{component}`): {message}")]
    NodeOutput {
        /// The flow's name.
        file: String,
        /// The node.
        node: String,
        /// Its component reference.
        component: String,
        /// What is wrong with the output.
        message: String,
    },
    /// A declared flow variable is `required` and has no value.
    #[error(
        "{file}: flow variable `{var}` is required (parameters.vars_init) and has no value; pass it with `--var {var}=…`"
    )]
    MissingVar {
        /// The flow's name.
        file: String,
        /// The variable.
        var: String,
    },
    /// A node the runner executes itself (`emit.*`, `var.set`, `state.*`,
    /// `flow.call`, `flow.goto`) could not do its work.
    #[error("{file}: node `{node}` ({kind}): {message}")]
    Native {
        /// The flow's name.
        file: String,
        /// The node.
        node: String,
        /// The native kind, e.g. `flow.call`.
        kind: String,
        /// What went wrong.
        message: String,
    },
    /// The run waits for another message, where waiting is not possible.
    #[error(
        "{file}: the run waits at node `{node}` of flow `{flow}` for the next message; run it in a session to resume it (host-shim: `--session ID`)"
    )]
    Waits {
        /// The flow's name.
        file: String,
        /// The flow it waits in.
        flow: String,
        /// The node it would resume at.
        node: String,
    },
    /// A waiting run's snapshot cannot be resumed with this flow.
    #[error("{file}: cannot resume the waiting run: {message}")]
    Snapshot {
        /// The flow's name.
        file: String,
        /// Why not.
        message: String,
    },
    /// A node's component has no slot to call it through.
    #[error("{file}: node `{node}`: {message}")]
    Binding {
        /// The flow's name.
        file: String,
        /// The node.
        node: String,
        /// What is missing.
        message: String,
    },
}

impl RunError {
    /// The node the error concerns, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            RunError::Flow(FlowError::Invalid { node, .. }) => node.as_deref(),
            RunError::Flow(FlowError::Template(t, _)) => Some(&t.node),
            RunError::Template(t) => Some(&t.node),
            RunError::Condition { node, .. }
            | RunError::StepLimit { node, .. }
            | RunError::Node { node, .. }
            | RunError::NodeOutput { node, .. }
            | RunError::Binding { node, .. }
            | RunError::Waits { node, .. }
            | RunError::Native { node, .. } => Some(node),
            _ => None,
        }
    }

    /// The YAML position, when known.
    pub fn position(&self) -> Position {
        match self {
            RunError::Flow(FlowError::Yaml { pos, .. } | FlowError::Invalid { pos, .. }) => {
                pos.clone()
            }
            RunError::Flow(FlowError::Template(_, pos)) => pos.clone(),
            _ => Position::default(),
        }
    }
}
