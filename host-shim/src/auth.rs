//! Who a `serve` request acts for: proven by a credential, never claimed.
//!
//! One mode per server:
//! - [`Auth::Fixed`] (the default): every run acts for the `--tenant` flags;
//!   `x-greentic-*` headers are ignored. Loopback only, unless the operator
//!   says a gateway stands in front.
//! - [`Auth::TrustHeaders`]: the headers are believed (loopback or gateway only).
//! - [`Auth::Tokens`]: `Authorization: Bearer <token>`; the tokens file holds
//!   each token's SHA-256 (never the token), the tenant it acts for, the
//!   flows it may run and its own limits.
//! - [`Auth::Jwt`]: a signed JWT (HS256/384/512 with a secret, RS256/384/512
//!   or ES256/384 with a PEM public key, or any of them from a JWKS); `exp`
//!   is required and `exp`/`nbf` enforced, issuer and audience checked when
//!   configured; claims `env`, `tenant`, `team`, `user` (else `sub`) and
//!   `flows` give the tenant and the flows.
//!
//! Whatever the mode, a request whose `x-greentic-*` headers name another
//! tenant than its credential's is refused (403), not silently corrected.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Who a request acts for, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The credential, for limits and logs (a token's name, a JWT's subject).
    pub credential: String,
    /// Who it acts for.
    pub scope: runner_core::Tenant,
    /// Flows it may run; `None`: all.
    pub flows: Option<Vec<String>>,
    /// Its own cap on runs in progress, over the server's per-credential default.
    pub max_concurrent: Option<usize>,
    /// Its own requests per second, over the server's per-credential default.
    pub rps: Option<u32>,
}

impl Principal {
    /// Whether it may run `flow`.
    pub fn may_run(&self, flow: &str) -> bool {
        self.flows
            .as_ref()
            .is_none_or(|flows| flows.iter().any(|f| f == flow))
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// 401 (no or bad credential) or 403 (a credential that may not do it).
    pub status: u16,
    /// Metric label.
    pub reason: &'static str,
    /// For the client.
    pub message: String,
}

fn denied(status: u16, reason: &'static str, message: impl Into<String>) -> Denied {
    Denied {
        status,
        reason,
        message: message.into(),
    }
}

/// How a server decides who a request acts for.
#[derive(Debug)]
pub enum Auth {
    /// Every run acts for this principal.
    Fixed(Principal),
    /// The `x-greentic-*` headers say who, over these defaults.
    TrustHeaders(Principal),
    /// Bearer tokens, by SHA-256.
    Tokens(HashMap<[u8; 32], Principal>),
    /// Signed JWTs.
    Jwt(JwtVerifier),
}

/// The `x-greentic-*` headers a request carries.
#[derive(Debug, Default, Clone)]
pub struct TenantHeaders {
    /// `x-greentic-env`
    pub env: Option<String>,
    /// `x-greentic-tenant`
    pub tenant: Option<String>,
    /// `x-greentic-team`
    pub team: Option<String>,
    /// `x-greentic-user`
    pub user: Option<String>,
}

impl Auth {
    /// Who a request with `authorization` and `headers` acts for.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        headers: &TenantHeaders,
    ) -> Result<Principal, Denied> {
        let principal = match self {
            Auth::Fixed(p) => return Ok(p.clone()),
            Auth::TrustHeaders(defaults) => {
                let mut p = defaults.clone();
                if let Some(v) = &headers.env {
                    p.scope.env = v.clone();
                }
                if let Some(v) = &headers.tenant {
                    p.scope.tenant = v.clone();
                    p.credential = format!("tenant:{v}");
                }
                if headers.team.is_some() {
                    p.scope.team = headers.team.clone();
                }
                if headers.user.is_some() {
                    p.scope.user = headers.user.clone();
                }
                return Ok(p);
            }
            Auth::Tokens(tokens) => {
                let token = bearer(authorization)?;
                let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                tokens
                    .get(&hash)
                    .cloned()
                    .ok_or_else(|| denied(401, "bad_token", "unknown bearer token"))?
            }
            Auth::Jwt(verifier) => verifier.verify(bearer(authorization)?)?,
        };
        // Headers may repeat the credential's tenant, never change it.
        let checks = [
            ("env", &headers.env, Some(&principal.scope.env)),
            ("tenant", &headers.tenant, Some(&principal.scope.tenant)),
            ("team", &headers.team, principal.scope.team.as_ref()),
            ("user", &headers.user, principal.scope.user.as_ref()),
        ];
        for (what, header, own) in checks {
            if let Some(claimed) = header
                && Some(claimed) != own
            {
                return Err(denied(
                    403,
                    "tenant_mismatch",
                    format!(
                        "x-greentic-{what} says `{claimed}` but the credential acts for {what} `{}`",
                        own.map(String::as_str).unwrap_or("")
                    ),
                ));
            }
        }
        Ok(principal)
    }
}

fn bearer(authorization: Option<&str>) -> Result<&str, Denied> {
    let value = authorization.ok_or_else(|| {
        denied(
            401,
            "no_credentials",
            "this server needs `Authorization: Bearer …`",
        )
    })?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            denied(
                401,
                "no_credentials",
                "the Authorization header is not `Bearer <token>`",
            )
        })
}

/// One entry of a tokens file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    /// `sha256:<hex>` (or bare hex) of the token.
    sha256: String,
    #[serde(default = "default_env")]
    env: String,
    tenant: String,
    team: Option<String>,
    user: Option<String>,
    flows: Option<Vec<String>>,
    max_concurrent: Option<usize>,
    rps: Option<u32>,
}

fn default_env() -> String {
    "local".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

/// Reads a tokens file (YAML or JSON): `tokens: [{name, sha256, tenant, env?,
/// team?, user?, flows?, max_concurrent?, rps?}]`.
pub fn read_tokens(path: &Path) -> anyhow::Result<HashMap<[u8; 32], Principal>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the tokens file `{}`", path.display()))?;
    let file: TokensFile = serde_yaml::from_str(&text)
        .with_context(|| format!("`{}` is not a tokens file", path.display()))?;
    let mut tokens = HashMap::new();
    for entry in file.tokens {
        let hash = parse_sha256(&entry.sha256)
            .with_context(|| format!("`{}`: token `{}`", path.display(), entry.name))?;
        let principal = Principal {
            credential: entry.name.clone(),
            scope: runner_core::Tenant {
                env: entry.env,
                tenant: entry.tenant,
                team: entry.team,
                user: entry.user,
            },
            flows: entry.flows,
            max_concurrent: entry.max_concurrent,
            rps: entry.rps,
        };
        if tokens.insert(hash, principal).is_some() {
            bail!(
                "`{}`: token `{}` has the hash of another token",
                path.display(),
                entry.name
            );
        }
    }
    Ok(tokens)
}

/// `sha256:<64 hex>` or the bare hex.
pub fn parse_sha256(text: &str) -> anyhow::Result<[u8; 32]> {
    let hex = text.trim();
    let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "`sha256` must be 64 hex digits (e.g. `printf %s TOKEN | sha256sum`), never the token itself"
        );
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(out)
}

/// Checks JWTs and maps their claims.
pub struct JwtVerifier {
    keys: JwtKeys,
    issuer: Option<String>,
    audience: Option<String>,
    default_env: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The keys JWTs are verified with.
pub enum JwtKeys {
    /// One key and the algorithms of its kind.
    Single(DecodingKey, Vec<Algorithm>),
    /// A JWKS, by `kid`.
    Set(jsonwebtoken::jwk::JwkSet),
}

impl JwtKeys {
    /// The JWKS in `path`.
    pub fn from_jwks_file(path: &Path) -> anyhow::Result<JwtKeys> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the JWKS `{}`", path.display()))?;
        Ok(JwtKeys::Set(serde_json::from_str(&text).with_context(
            || format!("`{}` is not a JWKS", path.display()),
        )?))
    }

    /// The key `token` is to be verified with and the algorithms allowed
    /// for it: the JWKS entry its `kid` names (its own algorithm only), or
    /// the single key's family; an algorithm that does not fit is refused.
    pub fn key_for(&self, token: &str) -> Result<(DecodingKey, Vec<Algorithm>), String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let (key, algorithms) = match self {
            JwtKeys::Single(key, algorithms) => (key.clone(), algorithms.clone()),
            JwtKeys::Set(set) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or("the JWT names no `kid` (the server has a JWKS)")?;
                let jwk = set
                    .find(kid)
                    .ok_or_else(|| format!("no key `{kid}` in the JWKS"))?;
                (
                    DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?,
                    jwk_algorithms(jwk)?,
                )
            }
        };
        if !algorithms.contains(&header.alg) {
            return Err(format!(
                "algorithm {:?} does not fit the server's key",
                header.alg
            ));
        }
        Ok((key, algorithms))
    }
}

/// The algorithms a JWKS entry verifies: its declared `alg`, else those of
/// its key type — never what the token's header asks for.
fn jwk_algorithms(jwk: &jsonwebtoken::jwk::Jwk) -> Result<Vec<Algorithm>, String> {
    use jsonwebtoken::jwk::AlgorithmParameters;
    if let Some(declared) = jwk.common.key_algorithm {
        let algorithm = declared
            .to_string()
            .parse::<Algorithm>()
            .map_err(|_| format!("the JWKS key's `alg` {declared} does not sign JWTs"))?;
        return Ok(vec![algorithm]);
    }
    Ok(match &jwk.algorithm {
        AlgorithmParameters::OctetKey(_) => {
            vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
        }
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(_) => vec![Algorithm::ES256, Algorithm::ES384],
        AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
    })
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    env: Option<String>,
    tenant: Option<String>,
    team: Option<String>,
    user: Option<String>,
    flows: Option<Vec<String>>,
}

impl JwtVerifier {
    /// A verifier for the key in `key_file` (an HMAC secret, or a PEM public
    /// RSA/EC key) or the JWKS in `jwks_file`.
    pub fn new(
        key_file: Option<&Path>,
        jwks_file: Option<&Path>,
        issuer: Option<String>,
        audience: Option<String>,
        default_env: String,
    ) -> anyhow::Result<JwtVerifier> {
        let keys = match (key_file, jwks_file) {
            (Some(path), None) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read the JWT key `{}`", path.display()))?;
                let text = String::from_utf8_lossy(&bytes);
                if text.contains("-----BEGIN") {
                    if let Ok(key) = DecodingKey::from_rsa_pem(&bytes) {
                        JwtKeys::Single(
                            key,
                            vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
                        )
                    } else {
                        let key = DecodingKey::from_ec_pem(&bytes).with_context(|| {
                            format!(
                                "`{}` is neither an RSA nor an EC public key (PEM)",
                                path.display()
                            )
                        })?;
                        JwtKeys::Single(key, vec![Algorithm::ES256, Algorithm::ES384])
                    }
                } else {
                    let secret = text.trim();
                    if secret.len() < 32 {
                        bail!(
                            "the HMAC secret in `{}` is shorter than 32 bytes",
                            path.display()
                        );
                    }
                    JwtKeys::Single(
                        DecodingKey::from_secret(secret.as_bytes()),
                        vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
                    )
                }
            }
            (None, Some(path)) => JwtKeys::from_jwks_file(path)?,
            _ => bail!("--auth jwt needs exactly one of --jwt-key FILE and --jwks FILE"),
        };
        Ok(JwtVerifier {
            keys,
            issuer,
            audience,
            default_env,
        })
    }

    fn verify(&self, token: &str) -> Result<Principal, Denied> {
        let bad = |e: jsonwebtoken::errors::Error| {
            denied(401, "bad_jwt", format!("the JWT is not accepted: {e}"))
        };
        let (key, algorithms) = self
            .keys
            .key_for(token)
            .map_err(|message| denied(401, "bad_jwt", message))?;
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.validate_nbf = true;
        validation.leeway = 5;
        // A configured issuer or audience is a required claim: jsonwebtoken
        // only compares them when present, so a token without them would pass.
        let mut required = vec!["exp"];
        if self.issuer.is_some() {
            required.push("iss");
        }
        if self.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(bad)?
            .claims;
        let tenant = claims
            .tenant
            .ok_or_else(|| denied(403, "bad_jwt", "the JWT has no `tenant` claim"))?;
        let user = claims.user.or(claims.sub.clone());
        Ok(Principal {
            credential: format!("jwt:{tenant}:{}", claims.sub.as_deref().unwrap_or("-")),
            scope: runner_core::Tenant {
                env: claims.env.unwrap_or_else(|| self.default_env.clone()),
                tenant,
                team: claims.team,
                user,
            },
            flows: claims.flows,
            max_concurrent: None,
            rps: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(tenant: &str) -> Principal {
        Principal {
            credential: tenant.into(),
            scope: runner_core::Tenant {
                env: "local".into(),
                tenant: tenant.into(),
                team: None,
                user: None,
            },
            flows: Some(vec!["hello".into()]),
            max_concurrent: None,
            rps: None,
        }
    }

    #[test]
    fn tokens_are_matched_by_hash_and_headers_cannot_change_the_tenant() {
        let hash: [u8; 32] = Sha256::digest(b"s3cret").into();
        let auth = Auth::Tokens(HashMap::from([(hash, principal("acme"))]));
        let none = TenantHeaders::default();
        assert_eq!(
            auth.authenticate(Some("Bearer s3cret"), &none)
                .unwrap()
                .scope
                .tenant,
            "acme"
        );
        assert_eq!(
            auth.authenticate(Some("Bearer nope"), &none)
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(auth.authenticate(None, &none).unwrap_err().status, 401);
        let forged = TenantHeaders {
            tenant: Some("globex".into()),
            ..Default::default()
        };
        let refused = auth
            .authenticate(Some("Bearer s3cret"), &forged)
            .unwrap_err();
        assert_eq!((refused.status, refused.reason), (403, "tenant_mismatch"));
        let same = TenantHeaders {
            tenant: Some("acme".into()),
            ..Default::default()
        };
        assert!(auth.authenticate(Some("Bearer s3cret"), &same).is_ok());
        assert!(!principal("acme").may_run("other"));
    }

    #[test]
    fn sha256_must_be_a_hash() {
        assert!(parse_sha256(&format!("sha256:{}", "ab".repeat(32))).is_ok());
        assert!(parse_sha256("s3cret").is_err());
    }
}
