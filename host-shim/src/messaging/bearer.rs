//! Teams (Bot Framework) webhooks carry `Authorization: Bearer <JWT>`: a
//! token signed by a key of the Bot Framework JWKS the operator gives
//! (`--bot-framework-jwks`), issuer `https://api.botframework.com`, audience
//! the tenant's bot app id (`TEAMS_APP_ID`), not expired (five minutes of
//! clock skew). The channel-independent part of verification is
//! `greentic_messaging_core::verify`; this is the check it is handed.

use greentic_messaging_core::{BOT_FRAMEWORK_ISSUER, BearerCheck};

use crate::auth::JwtKeys;

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
