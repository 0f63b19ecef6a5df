//! Webhook verification, by the host, before any component or flow runs:
//! each channel's own scheme, keyed by a secret of the route's tenant (so a
//! post to tenant A's route needs A's secret).
//!
//! - Telegram: `X-Telegram-Bot-Api-Secret-Token` equals `TELEGRAM_WEBHOOK_SECRET`
//!   (the `secret_token` given to `setWebhook`).
//! - Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">` with
//!   `SLACK_SIGNING_SECRET`, `X-Slack-Request-Timestamp` within five minutes.
//! - WhatsApp (Meta): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of body>`
//!   with `WHATSAPP_APP_SECRET`.
//! - Teams (Bot Framework): `Authorization: Bearer <JWT>`, checked by the
//!   host's [`BearerCheck`] for the audience `TEAMS_APP_ID` (host-shim: a key
//!   of the Bot Framework JWKS the operator gives, issuer
//!   `https://api.botframework.com`, not expired).
//!
//! Other channels have no verifier here yet: their posts are refused unless
//! the operator turns verification off for them.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::ChannelKind;

/// The issuer of Bot Framework tokens.
pub const BOT_FRAMEWORK_ISSUER: &str = "https://api.botframework.com";

/// Checks a bearer token (Teams: a Bot Framework JWT) for `audience` (the
/// tenant's bot app id); the host owns the keys and the JWT library.
pub trait BearerCheck {
    /// `Err` says why the token is not accepted.
    fn check(&self, token: &str, audience: &str) -> Result<(), String>;
}

/// How far a Slack request's timestamp may be from now.
pub const SLACK_WINDOW_SECS: u64 = 300;

/// Why a webhook was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unverified {
    /// The tenant has no secret for the channel.
    #[error("no {secret} is set for this tenant, so its {channel} webhooks cannot be verified")]
    NoSecret {
        /// The channel.
        channel: &'static str,
        /// The secret's key.
        secret: &'static str,
    },
    /// The request has no signature header.
    #[error("the request has no `{0}` header")]
    Missing(&'static str),
    /// The signature does not match.
    #[error("the `{0}` signature does not match")]
    Mismatch(&'static str),
    /// A Slack timestamp outside the window (replayed or skewed).
    #[error("the request timestamp is more than {SLACK_WINDOW_SECS} s from now")]
    Stale,
    /// A bearer token that is not accepted.
    #[error("the bearer token is not accepted: {0}")]
    BadToken(String),
    /// No verifier exists for the channel.
    #[error("webhooks of {0} cannot be verified by this host yet")]
    Unsupported(&'static str),
}

/// The secret a channel's webhooks are verified with.
pub fn secret_key(kind: ChannelKind) -> Option<&'static str> {
    match kind {
        ChannelKind::Telegram => Some("TELEGRAM_WEBHOOK_SECRET"),
        ChannelKind::Slack => Some("SLACK_SIGNING_SECRET"),
        ChannelKind::WhatsApp => Some("WHATSAPP_APP_SECRET"),
        ChannelKind::Teams => Some("TEAMS_APP_ID"),
        _ => None,
    }
}

/// Checks a webhook of `kind`: `header` reads a request header (one value),
/// `secret` the tenant's secret, `bearer` checks bearer tokens (Teams;
/// `None`: Teams cannot be verified), `now` is Unix seconds.
pub fn verify(
    kind: ChannelKind,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    secret: Option<Vec<u8>>,
    bearer: Option<&dyn BearerCheck>,
    now: u64,
) -> Result<(), Unverified> {
    let Some(key) = secret_key(kind) else {
        return Err(Unverified::Unsupported(kind.name()));
    };
    let secret = secret.ok_or(Unverified::NoSecret {
        channel: kind.name(),
        secret: key,
    })?;
    match kind {
        ChannelKind::Telegram => {
            const HEADER: &str = "x-telegram-bot-api-secret-token";
            let given = header(HEADER).ok_or(Unverified::Missing(HEADER))?;
            // Compared as digests: no early exit that tells how much matched.
            if Sha256::digest(given.as_bytes()) != Sha256::digest(&secret) {
                return Err(Unverified::Mismatch(HEADER));
            }
            Ok(())
        }
        ChannelKind::Slack => {
            const SIGNATURE: &str = "x-slack-signature";
            const TIMESTAMP: &str = "x-slack-request-timestamp";
            let signature = header(SIGNATURE).ok_or(Unverified::Missing(SIGNATURE))?;
            let ts = header(TIMESTAMP).ok_or(Unverified::Missing(TIMESTAMP))?;
            let sent: u64 = ts
                .trim()
                .parse()
                .map_err(|_| Unverified::Mismatch(TIMESTAMP))?;
            if sent.abs_diff(now) > SLACK_WINDOW_SECS {
                return Err(Unverified::Stale);
            }
            let mut mac = hmac_of(&secret);
            mac.update(format!("v0:{ts}:").as_bytes());
            mac.update(body);
            check_hex(mac, signature.strip_prefix("v0="), SIGNATURE)
        }
        ChannelKind::WhatsApp => {
            const SIGNATURE: &str = "x-hub-signature-256";
            let signature = header(SIGNATURE).ok_or(Unverified::Missing(SIGNATURE))?;
            let mut mac = hmac_of(&secret);
            mac.update(body);
            check_hex(mac, signature.strip_prefix("sha256="), SIGNATURE)
        }
        ChannelKind::Teams => {
            const AUTHORIZATION: &str = "authorization";
            let bearer = bearer.ok_or(Unverified::Unsupported(kind.name()))?;
            let value = header(AUTHORIZATION).ok_or(Unverified::Missing(AUTHORIZATION))?;
            let token = value
                .strip_prefix("Bearer ")
                .ok_or(Unverified::Mismatch(AUTHORIZATION))?;
            let app_id =
                String::from_utf8(secret).map_err(|_| Unverified::Mismatch(AUTHORIZATION))?;
            bearer
                .check(token, app_id.trim())
                .map_err(Unverified::BadToken)
        }
        _ => Err(Unverified::Unsupported(kind.name())),
    }
}

fn hmac_of(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length")
}

/// Verifies `hex` against the MAC in constant time.
fn check_hex(mac: Hmac<Sha256>, hex: Option<&str>, header: &'static str) -> Result<(), Unverified> {
    let expected = hex
        .and_then(|h| hex::decode(h.trim()).ok())
        .ok_or(Unverified::Mismatch(header))?;
    mac.verify_slice(&expected)
        .map_err(|_| Unverified::Mismatch(header))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn slack_signature(secret: &str, ts: &str, body: &str) -> String {
        let mut mac = hmac_of(secret.as_bytes());
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn telegram_needs_the_tenants_secret_token() {
        let secret = || Some(b"s3cret".to_vec());
        let ok = headers(&[("x-telegram-bot-api-secret-token", "s3cret")]);
        assert_eq!(
            verify(ChannelKind::Telegram, &ok, b"{}", secret(), None, 0),
            Ok(())
        );
        let bad = headers(&[("x-telegram-bot-api-secret-token", "guess")]);
        assert!(matches!(
            verify(ChannelKind::Telegram, bad, b"{}", secret(), None, 0),
            Err(Unverified::Mismatch(_))
        ));
        assert!(matches!(
            verify(
                ChannelKind::Telegram,
                headers(&[]),
                b"{}",
                secret(),
                None,
                0
            ),
            Err(Unverified::Missing(_))
        ));
        assert!(matches!(
            verify(ChannelKind::Telegram, ok, b"{}", None, None, 0),
            Err(Unverified::NoSecret { .. })
        ));
    }

    #[test]
    fn slack_checks_the_signature_over_timestamp_and_body_in_a_window() {
        let now = 1_700_000_000u64;
        let ts = now.to_string();
        let body = r#"{"type":"event_callback"}"#;
        let sig = slack_signature("sign", &ts, body);
        let signed = |sig: &str, ts: &str| {
            headers(&[
                ("x-slack-signature", sig),
                ("x-slack-request-timestamp", ts),
            ])
        };
        let secret = || Some(b"sign".to_vec());
        assert_eq!(
            verify(
                ChannelKind::Slack,
                signed(&sig, &ts),
                body.as_bytes(),
                secret(),
                None,
                now
            ),
            Ok(())
        );
        // Another body under the same signature.
        assert!(matches!(
            verify(
                ChannelKind::Slack,
                signed(&sig, &ts),
                b"{}",
                secret(),
                None,
                now
            ),
            Err(Unverified::Mismatch(_))
        ));
        // A replay six minutes later.
        assert_eq!(
            verify(
                ChannelKind::Slack,
                signed(&sig, &ts),
                body.as_bytes(),
                secret(),
                None,
                now + 360
            ),
            Err(Unverified::Stale)
        );
        // Another secret.
        assert!(matches!(
            verify(
                ChannelKind::Slack,
                signed(&sig, &ts),
                body.as_bytes(),
                Some(b"x".to_vec()),
                None,
                now
            ),
            Err(Unverified::Mismatch(_))
        ));
    }

    #[test]
    fn meta_signs_the_body_and_unknown_schemes_are_refused() {
        let mut mac = hmac_of(b"app");
        mac.update(b"{}");
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let h = headers(&[("x-hub-signature-256", &sig)]);
        assert_eq!(
            verify(
                ChannelKind::WhatsApp,
                &h,
                b"{}",
                Some(b"app".to_vec()),
                None,
                0
            ),
            Ok(())
        );
        assert!(
            verify(
                ChannelKind::WhatsApp,
                &h,
                b"{ }",
                Some(b"app".to_vec()),
                None,
                0
            )
            .is_err()
        );
        // Teams without the Bot Framework keys cannot be verified.
        assert_eq!(
            verify(ChannelKind::Teams, &h, b"{}", Some(b"x".to_vec()), None, 0),
            Err(Unverified::Unsupported("teams"))
        );
        assert_eq!(
            verify(ChannelKind::Webex, &h, b"{}", Some(b"x".to_vec()), None, 0),
            Err(Unverified::Unsupported("webex"))
        );
    }

    struct Accepts(&'static str);

    impl BearerCheck for Accepts {
        fn check(&self, token: &str, audience: &str) -> Result<(), String> {
            (token == self.0 && audience == "app-1")
                .then_some(())
                .ok_or_else(|| "not that token".to_string())
        }
    }

    #[test]
    fn teams_hands_the_bearer_token_and_the_tenants_app_id_to_the_check() {
        let check = |value: &str| {
            let h = headers(&[("authorization", value)]);
            verify(
                ChannelKind::Teams,
                h,
                b"{}",
                Some(b"app-1\n".to_vec()),
                Some(&Accepts("t0k")),
                0,
            )
        };
        assert_eq!(check("Bearer t0k"), Ok(()));
        assert!(matches!(
            check("Bearer other"),
            Err(Unverified::BadToken(_))
        ));
        assert!(matches!(check("Basic t0k"), Err(Unverified::Mismatch(_))));
        assert!(matches!(
            verify(
                ChannelKind::Teams,
                headers(&[]),
                b"{}",
                Some(b"app-1".to_vec()),
                Some(&Accepts("t0k")),
                0
            ),
            Err(Unverified::Missing("authorization"))
        ));
    }
}
