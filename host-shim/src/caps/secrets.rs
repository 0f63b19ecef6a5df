//! `greentic:secrets-store/secrets-store@1.0.0` (and `@1.1.0`): secrets for
//! approved components, from `--secret KEY=VALUE`, `--secrets-file FILE`
//! (dotenv `KEY=VALUE` lines or a JSON object) and `GREENTIC_SECRET_<KEY>`
//! environment variables, in that order of precedence. An entry named
//! `<tenant>/<KEY>` applies to that tenant only and wins over `KEY`. A
//! component reads only the keys its manifest declares; anything else is
//! `denied`. Values are never printed, logged or put in an error.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use greentic_interfaces_wasmtime::host_helpers::v1::secrets_store::{
    SecretsErrorV1_1 as SecretsError, SecretsStoreHostV1_1, add_secrets_store_compat_to_linker,
};
use wasmtime::component::Linker;

/// Separates a tenant from a key in a scoped entry (`acme/API_TOKEN`).
pub const SCOPE_SEPARATOR: char = '/';

/// Where secret values come from. Its `Debug` shows keys, never values.
#[derive(Clone, Default)]
pub struct SecretSource {
    /// `--secret` and `--secrets-file` entries (file first, flags over it).
    given: HashMap<String, Vec<u8>>,
    /// Read `GREENTIC_SECRET_<KEY>` from the environment.
    env: bool,
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.given.keys().collect();
        keys.sort();
        f.debug_struct("SecretSource")
            .field("keys", &keys)
            .field("env", &self.env)
            .finish()
    }
}

impl SecretSource {
    /// From an optional secrets file and `KEY=VALUE` flags; environment
    /// variables are consulted last.
    pub fn new(file: Option<&Path>, flags: &[String]) -> anyhow::Result<Self> {
        let mut given = HashMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read --secrets-file `{}`: {e}", path.display())
            })?;
            if text.trim_start().starts_with('{') {
                let doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
                    .map_err(|e| {
                    anyhow::anyhow!(
                        "--secrets-file `{}` is not a JSON object of strings: {e}",
                        path.display()
                    )
                })?;
                for (key, value) in doc {
                    let serde_json::Value::String(value) = value else {
                        anyhow::bail!(
                            "--secrets-file `{}`: the value of `{key}` is not a string",
                            path.display()
                        );
                    };
                    given.insert(key, value.into_bytes());
                }
            } else {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let line = line.strip_prefix("export ").unwrap_or(line);
                    let (key, value) = line.split_once('=').ok_or_else(|| {
                        anyhow::anyhow!(
                            "--secrets-file `{}` line {}: expected KEY=VALUE",
                            path.display(),
                            n + 1
                        )
                    })?;
                    let value = value.trim();
                    let value = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                        .unwrap_or(value);
                    given.insert(key.trim().to_string(), value.as_bytes().to_vec());
                }
            }
        }
        for flag in flags {
            let (key, value) = flag
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("invalid --secret: expected KEY=VALUE (the value is not shown)")
                })?;
            given.insert(key.to_string(), value.as_bytes().to_vec());
        }
        Ok(SecretSource { given, env: true })
    }

    /// The value of `key` for `tenant`, for the host's own use (webhook
    /// verification); `None` for a key with the scope separator.
    pub fn host_secret(&self, tenant: &str, key: &str) -> Option<Vec<u8>> {
        if key.contains(SCOPE_SEPARATOR) {
            return None;
        }
        self.lookup(tenant, key)
    }

    /// The value of `key` for `tenant`, if any source has it. `key` never
    /// holds the scope separator (manifests with one are refused at load, and
    /// [`SecretsCtx::get`] refuses one), so only `tenant`'s scoped entry or the
    /// unscoped one can match.
    fn lookup(&self, tenant: &str, key: &str) -> Option<Vec<u8>> {
        debug_assert!(!key.contains(SCOPE_SEPARATOR));
        if let Some(v) = self.given.get(&format!("{tenant}/{key}")) {
            return Some(v.clone());
        }
        if let Some(v) = self.given.get(key) {
            return Some(v.clone());
        }
        if !self.env {
            return None;
        }
        let var: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        std::env::var_os(format!("GREENTIC_SECRET_{var}")).map(|v| v.into_encoded_bytes())
    }
}

/// A component instance's view of the secrets.
#[derive(Debug, Clone, Default)]
pub struct SecretsCtx {
    source: Arc<SecretSource>,
    tenant: String,
    component: String,
    /// Keys the manifest declares (empty for components without the import).
    allowed: Vec<String>,
}

impl SecretsCtx {
    /// Secrets `allowed` to `component`, acting for `tenant`.
    pub fn new(
        source: Arc<SecretSource>,
        tenant: &str,
        component: &str,
        allowed: Vec<String>,
    ) -> Self {
        SecretsCtx {
            source,
            tenant: tenant.to_string(),
            component: component.to_string(),
            allowed,
        }
    }
}

impl SecretsStoreHostV1_1 for SecretsCtx {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, SecretsError> {
        // A key with the scope separator would name another tenant's entry.
        if key.is_empty() || key.contains(char::is_control) || key.contains(SCOPE_SEPARATOR) {
            tracing::warn!(component = %self.component, key = %key, "refused a secret key that is empty, has control characters or a tenant scope");
            return Err(SecretsError::InvalidKey);
        }
        if !self.allowed.contains(&key) {
            tracing::warn!(component = %self.component, key = %key, "refused a secret the manifest does not declare");
            return Err(SecretsError::Denied);
        }
        Ok(self.source.lookup(&self.tenant, &key))
    }

    /// Components cannot write secrets here.
    fn put(&mut self, key: String, _value: Vec<u8>) {
        tracing::warn!(component = %self.component, key = %key, "ignored a secret write (the secret store is read-only)");
    }
}

/// Adds `greentic:secrets-store/secrets-store@1.1.0` and `@1.0.0` to `linker`.
pub fn add_to_linker<T: crate::caps::holds::Holds<SecretsCtx>>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    add_secrets_store_compat_to_linker(linker, |state: &mut T| state.held())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_precedence_and_tenant_scope() {
        let dir = std::env::temp_dir().join(format!("secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let env_file = dir.join("s.env");
        std::fs::write(
            &env_file,
            "# comment\nTOKEN=from-file\nexport QUOTED=\"q v\"\nacme/TOKEN=acme-only\n",
        )
        .unwrap();
        let source = SecretSource::new(Some(&env_file), &["TOKEN=from-flag".into()]).unwrap();
        assert_eq!(source.lookup("other", "TOKEN").unwrap(), b"from-flag");
        assert_eq!(source.lookup("acme", "TOKEN").unwrap(), b"acme-only");
        assert_eq!(source.lookup("x", "QUOTED").unwrap(), b"q v");
        assert!(source.lookup("x", "NOPE_NOT_SET_ANYWHERE").is_none());
        let json = dir.join("s.json");
        std::fs::write(&json, r#"{"API_KEY": "k"}"#).unwrap();
        assert_eq!(
            SecretSource::new(Some(&json), &[])
                .unwrap()
                .lookup("t", "API_KEY")
                .unwrap(),
            b"k"
        );
        // Debug never shows a value.
        let shown = format!("{source:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("from-flag") && !shown.contains("acme-only"),
            "{shown}"
        );
        let err = SecretSource::new(None, &["novalue".into()])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("novalue"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_declared_keys_are_readable() {
        let source = Arc::new(SecretSource::new(None, &["A=1".into(), "B=2".into()]).unwrap());
        let mut ctx = SecretsCtx::new(source, "t", "c", vec!["A".into()]);
        assert_eq!(ctx.get("A".into()).unwrap(), Some(b"1".to_vec()));
        assert!(matches!(ctx.get("B".into()), Err(SecretsError::Denied)));
        assert!(matches!(
            ctx.get(String::new()),
            Err(SecretsError::InvalidKey)
        ));
        // Another tenant's scoped entry is out of reach, even when "declared".
        let source = Arc::new(SecretSource::new(None, &["acme/A=acme".into()]).unwrap());
        let mut ctx = SecretsCtx::new(source, "globex", "c", vec!["acme/A".into()]);
        assert!(matches!(
            ctx.get("acme/A".into()),
            Err(SecretsError::InvalidKey)
        ));
    }
}
