//! `capability-deny`: plugged by `compose --deny-unapproved` into the secrets
//! and HTTP imports of a component the profile or its manifest does not
//! approve, so the app composes and runs, and the component gets the
//! interface's own refusal on every call: `denied` from the secrets store, a
//! `denied` host error from the HTTP clients. Nothing is read or sent.

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use bindings::exports::greentic::http1_0_0::http_client as http10;
use bindings::exports::greentic::http1_1_0::http_client as http11;
use bindings::exports::greentic::secrets_store::secrets_store;
use bindings::greentic::interfaces_types::types::TenantCtx;

const HTTP_DENIED: &str = "outbound HTTP is not approved for this component (its manifest and the profile must both allow it)";

struct Deny;

impl secrets_store::Guest for Deny {
    fn get(_key: String) -> Result<Option<Vec<u8>>, secrets_store::SecretsError> {
        Err(secrets_store::SecretsError::Denied)
    }
}

impl http10::Guest for Deny {
    fn send(
        _req: http10::Request,
        _ctx: Option<TenantCtx>,
    ) -> Result<http10::Response, http10::HostError> {
        Err(http10::HostError {
            code: "denied".into(),
            message: HTTP_DENIED.into(),
        })
    }
}

impl http11::Guest for Deny {
    fn send(
        _req: http11::Request,
        _opts: Option<http11::RequestOptions>,
        _ctx: Option<TenantCtx>,
    ) -> Result<http11::Response, http11::HostError> {
        Err(http11::HostError {
            code: "denied".into(),
            message: HTTP_DENIED.into(),
        })
    }
}

bindings::export!(Deny with_types_in bindings);
