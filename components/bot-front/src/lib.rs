//! `bot-front`: put by `host-shim compose --http --provider` in front of the
//! runner and the channel's provider, so the composed bot is a
//! `wasi:http/proxy` app: `wasmtime serve -S cli,http` runs a greentic bot.
//!
//! Routes as host-shim serve's: `POST /v1/messaging/ingress/{channel}/{tenant}[/{team}[/{handler}]]`
//! (the baked channel and tenant only: its secrets are the app's environment,
//! not a tenant's) and `GET /healthz`. A webhook is verified first (the
//! channel's secret from the environment variable `secret_key` names), then
//! goes through `greentic_messaging_core::ingest`: the provider's
//! `ingest_http`, the baked flow per event, each reply through `render_plan`
//! → `encode` → `send_payload` (retried while the provider says retryable).
//!
//! A `wasi:http` host keeps nothing between requests, so this front keeps no
//! conversations (a `session.wait` turn answers and ends) and does not
//! deduplicate a channel's redeliveries; `host-shim serve` does both.

mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

use std::time::Duration;

use bindings::greentic::provider_schema_core::schema_core_api;
use front_kit::bindings::greentic::runner::run::{RunOutcome, Tenant};
use front_kit::http::Response;
use front_kit::{AppFront, BotSettings, wire};
use greentic_messaging_core::{
    self as core, ChannelKind, ChannelMessageEnvelope, Failed, Op, SEND_ATTEMPTS,
    SEND_FIRST_DELAY_MS, TenantCtx, Webhook,
};
use serde_json::{Value, json};
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

front_kit::bindings::export_app_front!(AppFront);
wasip2::http::proxy::export!(BotFront);

const INGRESS: &str = "/v1/messaging/ingress/";

struct BotFront;

impl wasip2::exports::http::incoming_handler::Guest for BotFront {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let response = answer(request);
        wire::send(response_out, response);
    }
}

fn answer(request: IncomingRequest) -> Response {
    let baked = front_kit::baked();
    let bot = baked
        .bot
        .as_ref()
        .expect("compose puts bot-front only into a bot, whose document has `bot`");
    let method = wire::method_name(&request.method());
    let path_with_query = request.path_with_query().unwrap_or_default();
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (path_with_query.clone(), None),
    };
    if path == "/healthz" {
        return match method.as_str() {
            "GET" => front_kit::http::healthz(),
            _ => Response::host_error(405, "use GET"),
        };
    }
    let Some(route) = path.strip_prefix(INGRESS) else {
        return Response::host_error(
            404,
            "no such route: POST /v1/messaging/ingress/{channel}/{tenant}[/{team}[/{handler}]], GET /healthz",
        );
    };
    let segments: Vec<&str> = route.split('/').collect();
    let (channel, tenant, team) = match segments.as_slice() {
        [channel, tenant] => (*channel, *tenant, None),
        [channel, tenant, team] | [channel, tenant, team, _] => (*channel, *tenant, Some(*team)),
        _ => {
            return Response::host_error(
                404,
                "expected /v1/messaging/ingress/{channel}/{tenant}[/{team}[/{handler}]]",
            );
        }
    };
    let Some(kind) = ChannelKind::parse(channel).filter(|k| k.name() == bot.channel) else {
        return Response::host_error(404, &format!("this bot serves the {} channel", bot.channel));
    };
    let http = &baked.http;
    if tenant != http.tenant || team != http.team.as_deref() {
        return Response::host_error(
            404,
            &format!(
                "this bot serves tenant `{}`{}",
                http.tenant,
                http.team
                    .as_deref()
                    .map(|t| format!(", team `{t}`"))
                    .unwrap_or_default()
            ),
        );
    }
    if method != "POST" {
        return Response::host_error(405, "use POST with the channel's webhook body");
    }
    let headers = wire::headers(&request);
    let Some(body) = wire::read_body(request, http.max_body) else {
        return front_kit::http::too_large(baked);
    };
    if bot.verify
        && let Err(unverified) = verify(kind, &headers, &body)
    {
        eprintln!("bot-front: refused a {channel} webhook: {unverified}");
        return Response::host_error(401, &unverified.to_string());
    }
    let webhook = Webhook {
        method,
        path: path.clone(),
        query,
        headers,
        body,
    };
    let ctx = match tenant_ctx(&http.env, &http.tenant, http.team.as_deref()) {
        Ok(ctx) => ctx,
        Err(message) => return Response::host_error(500, &message),
    };
    let mut turns = Turns { bot, kind };
    match core::ingest(&mut turns, kind, &webhook, &ctx) {
        Ok((answer, report)) => {
            if report != core::Report::default() {
                eprintln!("bot-front: {channel} webhook: {report:?}");
            }
            Response {
                status: answer.status,
                headers: answer.headers,
                body: answer.body,
            }
        }
        Err(failed) => {
            eprintln!("bot-front: the provider's ingest_http failed: {failed}");
            Response::host_error(502, &format!("the channel's provider failed: {failed}"))
        }
    }
}

/// Checks the webhook's signature with the channel's secret from the
/// environment. Teams needs a JWKS, which a composition does not carry.
fn verify(
    kind: ChannelKind,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(), core::Unverified> {
    let secret = core::secret_key(kind).and_then(|key| {
        wasip2::cli::environment::get_environment()
            .into_iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.into_bytes())
    });
    let header = |name: &str| {
        let mut values = headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let first = values.next()?.1.clone();
        // A repeated signature header is not a signature.
        values.next().is_none().then_some(first)
    };
    let now = wasip2::clocks::wall_clock::now().seconds;
    core::verify(kind, header, body, secret, None, now)
}

fn tenant_ctx(env: &str, tenant: &str, team: Option<&str>) -> Result<TenantCtx, String> {
    let mut ctx = TenantCtx::new(
        env.parse().map_err(|e| format!("env `{env}`: {e}"))?,
        tenant
            .parse()
            .map_err(|e| format!("tenant `{tenant}`: {e}"))?,
    );
    if let Some(team) = team {
        ctx = ctx.with_team(Some(
            team.parse().map_err(|e| format!("team `{team}`: {e}"))?,
        ));
    }
    Ok(ctx)
}

/// One webhook's turns in this instance.
struct Turns<'a> {
    bot: &'a BotSettings,
    kind: ChannelKind,
}

impl core::Host for Turns<'_> {
    type Failure = Failed;

    fn call(&mut self, op: Op, mut input: Value) -> Result<Value, Failed> {
        if let Value::Object(map) = &mut input
            && !matches!(map.get("config"), Some(Value::Object(_)))
        {
            let config = serde_json::from_str(&self.bot.config_json).unwrap_or_else(|_| json!({}));
            map.insert("config".into(), config);
        }
        let bytes = input.to_string().into_bytes();
        let mut delay = Duration::from_millis(SEND_FIRST_DELAY_MS);
        let mut attempt = 1;
        loop {
            let answer = schema_core_api::invoke(op.name(), &bytes);
            match core::read_answer(&answer) {
                Ok(value) => return Ok(value),
                Err(failed)
                    if failed.retryable && op == Op::SendPayload && attempt < SEND_ATTEMPTS =>
                {
                    eprintln!(
                        "bot-front: {} {} failed (attempt {attempt}), retrying in {delay:?}: {failed}",
                        self.kind.name(),
                        op.name()
                    );
                    wasip2::clocks::monotonic_clock::subscribe_duration(delay.as_nanos() as u64)
                        .block();
                    delay *= 2;
                    attempt += 1;
                }
                Err(failed) => return Err(Failed(format!("{}: {failed}", op.name()))),
            }
        }
    }

    fn claim(&mut self, _key: &str) -> Result<bool, Failed> {
        // Nothing outlives a request here: every event is new.
        Ok(true)
    }

    fn run(&mut self, event: &ChannelMessageEnvelope, input: Value) -> Result<Value, Failed> {
        let tenant = Tenant {
            env: event.tenant.env.as_str().to_string(),
            tenant: event.tenant.tenant.as_str().to_string(),
            team: event.tenant.team.as_ref().map(|t| t.as_str().to_string()),
            user: None,
        };
        let output = match front_kit::run_baked(input.to_string(), tenant, String::new()) {
            Ok(RunOutcome::Completed(output)) => output,
            Ok(RunOutcome::Waiting(waiting)) => waiting.output_json,
            Err(error) => {
                let at = error
                    .node
                    .map(|n| format!(" at node `{n}`"))
                    .unwrap_or_default();
                return Err(Failed(format!("{}{at}", error.message)));
            }
        };
        Ok(serde_json::from_str(&output).unwrap_or(Value::String(output)))
    }

    fn run_failed(&mut self, _key: &str, _failure: &Failed) {}

    fn warn(&self, event: &str, message: &str) {
        eprintln!("bot-front: {} event {event}: {message}", self.kind.name());
    }
}
