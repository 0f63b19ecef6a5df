//! Who the runner is to a registry: anonymous unless credentials name that
//! registry — from the environment (`GREENTIC_REGISTRY_HOST` with
//! `_USERNAME`/`_PASSWORD` or `_TOKEN`) or a Docker-style `config.json`
//! (`docker login`). Credentials are only ever sent to the host they name,
//! so a flow that references another registry cannot collect them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use oci_client::secrets::RegistryAuth;

/// Credentials per registry host.
#[derive(Clone, Default)]
pub struct Credentials {
    by_host: HashMap<String, Secret>,
}

#[derive(Clone)]
enum Secret {
    Basic(String, String),
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hosts only: never the secrets.
        f.debug_set().entries(self.by_host.keys()).finish()
    }
}

impl Credentials {
    /// None at all: every registry is asked anonymously.
    pub fn anonymous() -> Credentials {
        Credentials::default()
    }

    /// From this process's environment: the Docker config first, the
    /// `GREENTIC_REGISTRY_*` variables over it for their host.
    pub fn from_env() -> Credentials {
        let mut creds = docker_config_path()
            .map(|p| Credentials::from_docker_config(&p))
            .unwrap_or_default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(host) = var("GREENTIC_REGISTRY_HOST") {
            let secret = match (
                var("GREENTIC_REGISTRY_USERNAME"),
                var("GREENTIC_REGISTRY_PASSWORD"),
                var("GREENTIC_REGISTRY_TOKEN"),
            ) {
                (Some(user), Some(password), _) => Some(Secret::Basic(user, password)),
                (_, _, Some(token)) => Some(Secret::Bearer(token)),
                _ => None,
            };
            if let Some(secret) = secret {
                creds.by_host.insert(host_key(&host), secret);
            }
        }
        creds
    }

    /// The `auths` of a Docker `config.json` (inline `auth`, `username` +
    /// `password`, or `registrytoken`); a file that is missing or does not
    /// parse gives none. Credential helpers (`credsStore`) are not run.
    pub fn from_docker_config(path: &Path) -> Credentials {
        let mut creds = Credentials::default();
        let Ok(text) = std::fs::read_to_string(path) else {
            return creds;
        };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
            return creds;
        };
        let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
            return creds;
        };
        for (host, entry) in auths {
            let field = |k: &str| {
                entry
                    .get(k)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
            };
            let from_auth = field("auth")
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|pair| {
                    pair.split_once(':')
                        .map(|(u, p)| Secret::Basic(u.to_string(), p.to_string()))
                });
            let secret = from_auth
                .or_else(|| {
                    Some(Secret::Basic(
                        field("username")?.to_string(),
                        field("password")?.to_string(),
                    ))
                })
                .or_else(|| field("registrytoken").map(|t| Secret::Bearer(t.to_string())));
            if let Some(secret) = secret {
                creds.by_host.insert(host_key(host), secret);
            }
        }
        creds
    }

    /// With `user`/`password` for `host` (tests, embedders).
    pub fn with_basic(mut self, host: &str, user: &str, password: &str) -> Credentials {
        self.by_host.insert(
            host_key(host),
            Secret::Basic(user.to_string(), password.to_string()),
        );
        self
    }

    /// What to present to `host`.
    pub(crate) fn for_host(&self, host: &str) -> RegistryAuth {
        match self.by_host.get(&host_key(host)) {
            Some(Secret::Basic(u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            Some(Secret::Bearer(t)) => RegistryAuth::Bearer(t.clone()),
            None => RegistryAuth::Anonymous,
        }
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Docker config keys are written `host`, `https://host` or
/// `https://host/v1/`: all mean `host`.
fn host_key(written: &str) -> String {
    let rest = written
        .strip_prefix("https://")
        .or_else(|| written.strip_prefix("http://"))
        .unwrap_or(written);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config_entries_for_their_host_only() {
        let dir = std::env::temp_dir().join(format!("registry-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ada:s3cret:x");
        std::fs::write(
            &file,
            format!(
                r#"{{"auths": {{"https://reg.example:5000/v1/": {{"auth": "{auth}"}},
                   "other.example": {{"username": "bob", "password": "pw"}},
                   "tok.example": {{"registrytoken": "t0k"}},
                   "helper.example": {{}}}}, "credsStore": "desktop"}}"#
            ),
        )
        .unwrap();
        let creds = Credentials::from_docker_config(&file);
        assert!(matches!(
            creds.for_host("reg.example:5000"),
            RegistryAuth::Basic(u, p) if u == "ada" && p == "s3cret:x"
        ));
        assert!(matches!(creds.for_host("other.example"), RegistryAuth::Basic(u, _) if u == "bob"));
        assert!(matches!(creds.for_host("tok.example"), RegistryAuth::Bearer(t) if t == "t0k"));
        assert!(matches!(
            creds.for_host("helper.example"),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(creds.for_host("ghcr.io"), RegistryAuth::Anonymous));
        assert!(!format!("{creds:?}").contains("s3cret"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
