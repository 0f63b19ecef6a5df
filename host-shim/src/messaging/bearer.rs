//! Teams (Bot Framework) webhooks carry `Authorization: Bearer <JWT>`: a
//! token signed by a key of the Bot Framework JWKS the operator gives
//! (`--bot-framework-jwks`), issuer `https://api.botframework.com`, audience
//! the tenant's bot app id (`TEAMS_APP_ID`), not expired (five minutes of
//! clock skew). The channel-independent part of verification is
//! `greentic_messaging_core::verify`; this is the check it is handed.
//!
//! The keys come from a JWKS file, or from a JWKS URL fetched at start and
//! refreshed in the background (the Bot Framework rotates its keys): a check
//! never waits on the network, and a failed refresh keeps the keys it has.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use anyhow::Context;
use greentic_interfaces_wasmtime::host_helpers::v1::http_client::{
    HttpClientHostV1_1, RequestV1_1,
};
use greentic_messaging_core::{BOT_FRAMEWORK_ISSUER, BearerCheck};

use crate::auth::JwtKeys;
use crate::caps::http::{HttpClientConfig, HttpCtx};

/// How often fetched keys are fetched again, and again after a failure.
const REFRESH: Duration = Duration::from_secs(12 * 3600);
const RETRY: Duration = Duration::from_secs(300);

/// The Bot Framework's signing keys (`--bot-framework-jwks FILE|URL`).
pub struct BotFrameworkKeys {
    current: Arc<RwLock<Arc<JwtKeys>>>,
}

impl BotFrameworkKeys {
    /// `source`: an `https://` (or `http://`) URL, fetched now and every
    /// [`REFRESH`] through `http` (its CAs and `--connect-to`), or a JWKS file.
    pub fn load(source: &str, http: &HttpClientConfig) -> anyhow::Result<BotFrameworkKeys> {
        if !(source.starts_with("https://") || source.starts_with("http://")) {
            let keys = JwtKeys::from_jwks_file(std::path::Path::new(source))?;
            return Ok(BotFrameworkKeys {
                current: Arc::new(RwLock::new(Arc::new(keys))),
            });
        }
        let keys = fetch_jwks(source, http)
            .with_context(|| format!("--bot-framework-jwks: fetching `{source}`"))?;
        let current = Arc::new(RwLock::new(Arc::new(keys)));
        let weak = Arc::downgrade(&current);
        let (url, http) = (source.to_string(), http.clone());
        std::thread::Builder::new()
            .name("bot-framework-jwks".into())
            .spawn(move || refresh(weak, &url, &http))
            .context("starting the JWKS refresh")?;
        Ok(BotFrameworkKeys { current })
    }
}

/// Fetches the keys again every [`REFRESH`] (after a failure, [`RETRY`])
/// while anyone holds them.
fn refresh(keys: Weak<RwLock<Arc<JwtKeys>>>, url: &str, http: &HttpClientConfig) {
    let mut wait = REFRESH;
    loop {
        std::thread::sleep(wait);
        let Some(keys) = keys.upgrade() else {
            return;
        };
        match fetch_jwks(url, http) {
            Ok(fresh) => {
                *keys.write().expect("JWKS lock") = Arc::new(fresh);
                wait = REFRESH;
            }
            Err(e) => {
                tracing::warn!(
                    "refreshing the Bot Framework keys from `{url}` failed, keeping the ones held: {e:#}"
                );
                wait = RETRY;
            }
        }
    }
}

/// GETs the JWKS at `url` with the host's HTTP client (certificates checked
/// against its CAs, `--connect-to` applied), to that host only.
fn fetch_jwks(url: &str, http: &HttpClientConfig) -> anyhow::Result<JwtKeys> {
    let uri: ureq::http::Uri = url.parse().context("not a URL")?;
    let host = uri.host().context("no host")?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    let mut client = HttpCtx::new("bot-framework-jwks", vec![format!("{host}:{port}")], http);
    let request = RequestV1_1 {
        method: "GET".into(),
        url: url.into(),
        headers: vec![("accept".into(), "application/json".into())],
        body: None,
    };
    let response = client
        .send(request, None, None)
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
    if response.status != 200 {
        anyhow::bail!("HTTP {}", response.status);
    }
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&response.body.unwrap_or_default()).context("not a JWKS")?;
    Ok(JwtKeys::Set(set))
}

impl BearerCheck for BotFrameworkKeys {
    fn check(&self, token: &str, audience: &str) -> Result<(), String> {
        let keys = self.current.read().expect("JWKS lock").clone();
        keys.check(token, audience)
    }
}

impl BearerCheck for JwtKeys {
    fn check(&self, token: &str, audience: &str) -> Result<(), String> {
        let (key, algorithms) = self.key_for(token)?;
        let mut validation = jsonwebtoken::Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = 300;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[BOT_FRAMEWORK_ISSUER]);
        validation.set_audience(&[audience]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use greentic_messaging_core::{ChannelKind, Unverified, verify};

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn teams_needs_a_bot_framework_token_for_the_tenants_app() {
        use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
        let secret = b"a-bot-framework-test-key-of-32-bytes!";
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(serde_json::json!({
            "keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": base64_url(secret)}]
        }))
        .unwrap();
        let jwks = JwtKeys::Set(jwks);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = |iss: &str, aud: &str, exp: u64| {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("k1".into());
            let claims = serde_json::json!({"iss": iss, "aud": aud, "exp": exp});
            encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
        };
        let check = |token: String| {
            let value = format!("Bearer {token}");
            let h = headers(&[("authorization", &value)]);
            verify(
                ChannelKind::Teams,
                h,
                b"{}",
                Some(b"app-1".to_vec()),
                Some(&jwks as &dyn BearerCheck),
                now,
            )
        };
        assert_eq!(
            check(token(BOT_FRAMEWORK_ISSUER, "app-1", now + 600)),
            Ok(())
        );
        // Another bot's token, another issuer, an expired one.
        assert!(matches!(
            check(token(BOT_FRAMEWORK_ISSUER, "app-2", now + 600)),
            Err(Unverified::BadToken(_))
        ));
        assert!(matches!(
            check(token("https://evil.example", "app-1", now + 600)),
            Err(Unverified::BadToken(_))
        ));
        assert!(matches!(
            check(token(BOT_FRAMEWORK_ISSUER, "app-1", now - 900)),
            Err(Unverified::BadToken(_))
        ));
        assert!(matches!(
            verify(
                ChannelKind::Teams,
                headers(&[]),
                b"{}",
                Some(b"app-1".to_vec()),
                Some(&jwks as &dyn BearerCheck),
                now
            ),
            Err(Unverified::Missing("authorization"))
        ));
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}
