//! Messaging providers (greentic's `schema-core-api` components): the
//! Telegram-style `bot-telegram` written here, called from flows, its channel
//! API answered by a local HTTPS stand-in reached through `--connect-to` and
//! trusted through `--http-ca`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{expect_failure, run_flow, scratch};
use crate::tls::{ChannelApi, test_ca};

const TOKEN: &str = "123:test-token";

/// A stand-in for `api.telegram.org` answering `statuses` in turn, and the
/// flags that send the provider's calls to it.
fn telegram_api(dir: &Path, statuses: &[u16]) -> (ChannelApi, Vec<String>) {
    let (api, mut flags) = stand_in(dir, "api.telegram.org", statuses);
    flags.extend(["--secret".into(), format!("TELEGRAM_BOT_TOKEN={TOKEN}")]);
    (api, flags)
}

/// A stand-in for the channel API at `host` (a certificate for that name
/// from a CA of the test's own): `--allow-host`, `--http-ca`, `--connect-to`.
fn stand_in(dir: &Path, host: &str, statuses: &[u16]) -> (ChannelApi, Vec<String>) {
    let (ca, cert, key) = test_ca(dir, host, &format!("DNS:{host}"));
    let api = ChannelApi::start(&cert, &key, statuses);
    let flags = vec![
        "--allow-host".into(),
        host.into(),
        "--http-ca".into(),
        ca.display().to_string(),
        "--connect-to".into(),
        format!("{host}:443:127.0.0.1:{}", api.port),
    ];
    (api, flags)
}

fn flow(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("flow.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn run(flow: &Path, flags: &[String], input: &Value) -> crate::support::Outcome {
    let input = input.to_string();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["--input", &input]);
    run_flow(flow, &args)
}

/// A flow node calls the provider's `send`; the channel API gets the Bot API
/// call with the token from the secrets store, over verified TLS to the
/// real host name (routed by `--connect-to`).
#[test]
fn a_flow_sends_through_the_provider_to_the_channel_api() {
    let dir = scratch("msg-send");
    let (api, flags) = telegram_api(&dir, &[200]);
    let f = flow(
        &dir,
        "id: reply\nnodes:\n  send:\n    component.exec: { component: bot-telegram, operation: send, input: { to: \"{{in.chat}}\", text: \"Hello {{in.name}}\" } }\n",
    );
    let out = run(&f, &flags, &json!({"chat": 42, "name": "Ada"}));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json()["ok"], json!(true), "{out}");
    let sent = api.received(1, Duration::from_secs(10));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["path"], json!(format!("/bot{TOKEN}/sendMessage")));
    assert_eq!(sent[0]["headers"]["host"], json!("api.telegram.org"));
    let body: Value = serde_json::from_str(sent[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"chat_id": "42", "text": "Hello Ada"}));
}

/// A channel API failing with 502 is a retryable node error: the node's
/// retry policy sends again and the second answer wins. A 400 is final.
#[test]
fn a_channel_api_failure_is_retried_when_retryable_and_final_otherwise() {
    let dir = scratch("msg-retry");
    let (api, flags) = telegram_api(&dir, &[502, 200]);
    let f = flow(
        &dir,
        "id: reply\nnodes:\n  send:\n    component.exec: { component: bot-telegram, operation: send, input: { to: \"7\", text: hi } }\n    retry: { max_attempts: 3, delay_ms: 1 }\n",
    );
    let out = run(&f, &flags, &json!({}));
    assert_eq!(out.code, 0, "{out}");
    let sent = api.received(2, Duration::from_secs(10));
    let statuses: Vec<&Value> = sent.iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, [&json!(502), &json!(200)], "{sent:?}");

    let dir = scratch("msg-final");
    let (api, flags) = telegram_api(&dir, &[400]);
    let f = flow(
        &dir,
        "id: reply\nnodes:\n  send:\n    component.exec: { component: bot-telegram, operation: send, input: { to: \"7\", text: hi } }\n    retry: { max_attempts: 3, delay_ms: 1 }\n",
    );
    let out = run(&f, &flags, &json!({}));
    expect_failure(&out, 1, "HTTP 400 from the stand-in");
    assert_eq!(api.received(1, Duration::from_secs(10)).len(), 1);
}

/// Without the token secret, or without the host allowed, nothing is sent
/// and the node fails saying why.
#[test]
fn no_secret_or_no_allowed_host_sends_nothing() {
    let dir = scratch("msg-gates");
    let (api, flags) = telegram_api(&dir, &[200]);
    let f = flow(
        &dir,
        "id: reply\nnodes:\n  send:\n    component.exec: { component: bot-telegram, operation: send, input: { to: \"7\", text: hi } }\n",
    );
    let without = |flag: &str| -> Vec<String> {
        let at = flags.iter().position(|f| f == flag).unwrap();
        let mut rest = flags.clone();
        rest.drain(at..at + 2);
        rest
    };
    let out = run(&f, &without("--secret"), &json!({}));
    expect_failure(&out, 1, "TELEGRAM_BOT_TOKEN is not set");
    let out = run(&f, &without("--allow-host"), &json!({}));
    expect_failure(&out, 2, "may not use outbound HTTP");
    assert!(api.received(1, Duration::from_millis(300)).is_empty());
}

/// `ingest_http` turns a Bot API update into an envelope: session = chat,
/// destination = chat, the update id in the envelope id.
#[test]
fn ingest_reads_a_telegram_update_into_an_envelope() {
    let dir = scratch("msg-ingest");
    let f = flow(
        &dir,
        "id: ingest\nnodes:\n  in:\n    component.exec: { component: bot-telegram, operation: ingest_http, input: \"{{in}}\" }\n",
    );
    let update = json!({"update_id": 9001, "message": {"message_id": 5, "chat": {"id": 42}, "from": {"id": 7, "is_bot": false}, "text": "hi"}});
    let request =
        json!({"method": "POST", "path": "/", "headers": [], "body_b64": b64(&update.to_string())});
    // It imports HTTP and secrets: both granted, neither used to read.
    let grants = [
        "--secret",
        "TELEGRAM_BOT_TOKEN=x",
        "--allow-host",
        "api.telegram.org",
    ];
    let out = run(&f, &grants.map(String::from), &request);
    assert_eq!(out.code, 0, "{out}");
    let answer = out.json();
    assert_eq!(answer["status"], json!(200), "{answer}");
    let event = &answer["events"][0];
    assert_eq!(event["id"], json!("tg:9001"), "{answer}");
    assert_eq!(event["session_id"], json!("42"));
    assert_eq!(event["to"][0]["id"], json!("42"));
    assert_eq!(event["from"]["id"], json!("7"));
    assert_eq!(event["text"], json!("hi"));
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

// ---- serve as a messaging host -------------------------------------------

const WEBHOOK_SECRET: &str = "whsec-acme";

/// The app flow: asks a name, waits for the next message, greets.
const CONVERSATION: &str = "id: default\nstart: ask\nnodes:\n  ask:\n    emit.response: { text: \"What is your name, {{in.input.from.id}}?\" }\n    routing: [{ to: wait }]\n  wait:\n    session.wait: name\n    routing: [{ to: greet }]\n  greet:\n    emit.response: { text: \"Hello {{in.input.text}}\" }\n";

/// `serve` of a flows folder holding `flow_yaml` as flow `default`, with
/// memory state, the channel API at `api_host` answered by a stand-in
/// answering `statuses`, and `extra` flags.
fn channel_server(
    dir: &Path,
    flow_yaml: &str,
    api_host: &str,
    statuses: &[u16],
    extra: &[String],
) -> (crate::support::Served, ChannelApi) {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(flows.join("default.ygtc"), flow_yaml).unwrap();
    let (api, mut flags) = stand_in(dir, api_host, statuses);
    flags.extend(["--addr", "127.0.0.1:0", "--state", "memory"].map(String::from));
    flags.extend_from_slice(extra);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    (crate::support::serve(&flows, &args), api)
}

/// [`channel_server`] with the Telegram-style channel for tenant `acme`.
fn bot_server(
    dir: &Path,
    flow_yaml: &str,
    statuses: &[u16],
) -> (crate::support::Served, ChannelApi) {
    let extra = [
        "--channel".into(),
        "telegram=bot-telegram".into(),
        "--secret".into(),
        format!("TELEGRAM_BOT_TOKEN={TOKEN}"),
        "--secret".into(),
        format!("acme/TELEGRAM_WEBHOOK_SECRET={WEBHOOK_SECRET}"),
    ];
    channel_server(dir, flow_yaml, "api.telegram.org", statuses, &extra)
}

fn update(update_id: i64, chat: i64, text: &str) -> String {
    json!({"update_id": update_id, "message": {"message_id": update_id, "chat": {"id": chat}, "from": {"id": 7, "is_bot": false}, "text": text}}).to_string()
}

fn post_update(
    server: &crate::support::Served,
    tenant: &str,
    secret: Option<&str>,
    body: &str,
) -> u16 {
    let url = format!("{}/v1/messaging/ingress/telegram/{tenant}", server.base);
    let headers: Vec<(&str, &str)> = secret
        .map(|s| vec![("x-telegram-bot-api-secret-token", s)])
        .unwrap_or_default();
    crate::support::http("POST", &url, body, &headers)
        .expect("an answer")
        .0
}

fn sent_texts(requests: &[Value]) -> Vec<(String, String)> {
    requests
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            (
                body["chat_id"].as_str().unwrap().to_string(),
                body["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The CONVERSATION flow's two turns in chat 42: `/start` is asked a name
/// (sent with the bot token), the next message resumes the waiting run.
fn converse(server: &crate::support::Served, api: &ChannelApi) {
    let status = post_update(
        server,
        "acme",
        Some(WEBHOOK_SECRET),
        &update(1, 42, "/start"),
    );
    assert_eq!(status, 200);
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(
        sent_texts(&sent),
        [("42".into(), "What is your name, 7?".into())]
    );
    assert_eq!(sent[0]["path"], json!(format!("/bot{TOKEN}/sendMessage")));
    let status = post_update(server, "acme", Some(WEBHOOK_SECRET), &update(2, 42, "Ada"));
    assert_eq!(status, 200);
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(sent_texts(&sent), [("42".into(), "Hello Ada".into())]);
}

/// A Telegram update posted to the ingress route runs the app flow and its
/// reply reaches the channel API; the conversation waits for the next
/// message of the same chat; a redelivered update runs nothing again.
#[test]
fn a_webhook_runs_the_app_flow_and_the_conversation_continues_on_the_next_message() {
    let dir = scratch("msg-serve");
    let (server, api) = bot_server(&dir, CONVERSATION, &[200]);
    converse(&server, &api);

    // Telegram redelivers update 2: answered, not run (nothing is sent).
    assert_eq!(
        post_update(&server, "acme", Some(WEBHOOK_SECRET), &update(2, 42, "Ada")),
        200
    );
    crate::support::wait_for_metric(
        &server,
        "greentic_messaging_webhooks_total{channel=\"telegram\",tenant=\"acme\",outcome=\"duplicate\"} 1",
    );
    // Another chat is another conversation.
    assert_eq!(
        post_update(&server, "acme", Some(WEBHOOK_SECRET), &update(3, 43, "hi")),
        200
    );
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(
        sent_texts(&sent),
        [("43".into(), "What is your name, 7?".into())]
    );
}

/// A webhook without the tenant's secret token, with a wrong one, or for a
/// tenant with no secret is refused with 401 before anything runs.
#[test]
fn an_unverified_webhook_is_refused_and_runs_nothing() {
    let dir = scratch("msg-unverified");
    let (server, api) = bot_server(&dir, CONVERSATION, &[200]);
    let body = update(10, 42, "hi");
    assert_eq!(post_update(&server, "acme", None, &body), 401);
    assert_eq!(post_update(&server, "acme", Some("guess"), &body), 401);
    // Tenant `beta` has no secret: acme's does not open beta's route.
    assert_eq!(
        post_update(&server, "beta", Some(WEBHOOK_SECRET), &body),
        401
    );
    crate::support::wait_for_metric(
        &server,
        "greentic_messaging_webhooks_total{channel=\"telegram\",tenant=\"\",outcome=\"unverified\"} 3",
    );
    assert!(api.received(1, Duration::from_millis(300)).is_empty());
    // An unknown channel is not served.
    let url = format!("{}/v1/messaging/ingress/slack/acme", server.base);
    assert_eq!(
        crate::support::http("POST", &url, "{}", &[]).unwrap().0,
        404
    );
}

/// Without a flow `default`, the one flow of `type: messaging` takes the
/// channel's messages (greentic-start's fallback); with two, neither does.
#[test]
fn the_single_messaging_flow_takes_messages_when_there_is_no_default() {
    let dir = scratch("msg-app-flow");
    let support = "id: support\ntype: messaging\nnodes:\n  reply:\n    emit.response: { text: \"support here\" }\n";
    let (server, api) = bot_server(&dir, support, &[200]);
    // Another flow of another type is no candidate.
    std::fs::write(
        dir.join("flows/report.ygtc"),
        "id: report\ntype: events\nnodes:\n  r:\n    emit.response: { text: nope }\n",
    )
    .unwrap();
    let secret = Some(WEBHOOK_SECRET);
    assert_eq!(
        post_update(&server, "acme", secret, &update(1, 42, "hi")),
        200
    );
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(sent_texts(&sent), [("42".into(), "support here".into())]);

    std::fs::write(
        dir.join("flows/sales.ygtc"),
        "id: sales\ntype: messaging\nnodes:\n  r:\n    emit.response: { text: sales }\n",
    )
    .unwrap();
    // Found by a rescan (serve re-reads the folder for unknown ids).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut n = 2;
    loop {
        let status = post_update(&server, "acme", secret, &update(n, 42, "hi"));
        if status == 503 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            std::time::Instant::now() < deadline,
            "the second messaging flow was never seen"
        );
        n += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A reply the channel API refuses with 502 is sent again (with backoff)
/// until it is taken; one message arrives.
#[test]
fn a_reply_the_channel_refuses_for_a_while_is_sent_again() {
    let dir = scratch("msg-egress-retry");
    let once = "id: default\nnodes:\n  reply:\n    emit.response: { text: \"pong\" }\n";
    let (server, api) = bot_server(&dir, once, &[502, 502, 200]);
    assert_eq!(
        post_update(
            &server,
            "acme",
            Some(WEBHOOK_SECRET),
            &update(1, 42, "ping")
        ),
        200
    );
    let sent = api.received(3, Duration::from_secs(30));
    let statuses: Vec<&Value> = sent.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [&json!(502), &json!(502), &json!(200)],
        "{sent:?}"
    );
    assert_eq!(sent_texts(&sent)[2], ("42".into(), "pong".into()));
    crate::support::wait_for_metric(
        &server,
        "greentic_messaging_replies_total{channel=\"telegram\",tenant=\"acme\",outcome=\"sent\"} 1",
    );
}

// ---- a Slack-style channel: signed requests ------------------------------

const SIGNING_SECRET: &str = "slack-signing-acme";

fn slack_headers(secret: &str, ts: u64, body: &str) -> Vec<(String, String)> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    vec![
        ("x-slack-request-timestamp".into(), ts.to_string()),
        (
            "x-slack-signature".into(),
            format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        ),
    ]
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn post_slack(
    server: &crate::support::Served,
    headers: &[(String, String)],
    body: &str,
) -> (u16, String) {
    let url = format!("{}/v1/messaging/ingress/slack/acme", server.base);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, text, _) = crate::support::http("POST", &url, body, &headers).expect("an answer");
    (status, text)
}

/// Slack's signed requests: the URL check is answered with its challenge, a
/// message event gets its reply through `chat.postMessage` with the bot
/// token; a wrong signature, a stale timestamp (a replay) or the bot's own
/// message runs nothing.
#[test]
fn slack_requests_are_verified_by_signature_and_answered_through_the_api() {
    let dir = scratch("msg-slack");
    let extra = [
        "--channel".into(),
        "slack=bot-slack".into(),
        "--secret".into(),
        "SLACK_BOT_TOKEN=xoxb-test".into(),
        "--secret".into(),
        format!("acme/SLACK_SIGNING_SECRET={SIGNING_SECRET}"),
    ];
    let flow =
        "id: default\nnodes:\n  reply:\n    emit.response: { text: \"pong: {{in.input.text}}\" }\n";
    let (server, api) = channel_server(&dir, flow, "slack.com", &[200], &extra);

    let challenge = json!({"type": "url_verification", "challenge": "c-123"}).to_string();
    let answer = post_slack(
        &server,
        &slack_headers(SIGNING_SECRET, now(), &challenge),
        &challenge,
    );
    assert_eq!(answer, (200, "c-123".to_string()));

    let event = |id: &str, extra: Value| {
        let mut event = json!({"type": "message", "channel": "C1", "user": "U1", "text": "hi"});
        event
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"type": "event_callback", "event_id": id, "team_id": "T1", "event": event})
            .to_string()
    };
    let body = event("Ev1", json!({}));
    assert_eq!(
        post_slack(&server, &slack_headers(SIGNING_SECRET, now(), &body), &body).0,
        200
    );
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["path"], json!("/api/chat.postMessage"));
    assert_eq!(
        sent[0]["headers"]["authorization"],
        json!("Bearer xoxb-test")
    );
    let sent_body: Value = serde_json::from_str(sent[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent_body, json!({"channel": "C1", "text": "pong: hi"}));

    let body = event("Ev2", json!({}));
    let forged = slack_headers("not-the-secret", now(), &body);
    assert_eq!(post_slack(&server, &forged, &body).0, 401);
    let stale = slack_headers(SIGNING_SECRET, now() - 600, &body);
    assert_eq!(post_slack(&server, &stale, &body).0, 401);
    let from_bot = event("Ev3", json!({"bot_id": "B1"}));
    let headers = slack_headers(SIGNING_SECRET, now(), &from_bot);
    assert_eq!(post_slack(&server, &headers, &from_bot).0, 200);
    crate::support::wait_for_metric(
        &server,
        "greentic_messaging_webhooks_total{channel=\"slack\",tenant=\"acme\",outcome=\"from_bot\"} 1",
    );
    assert!(api.received(1, Duration::from_millis(300)).is_empty());
}

/// greentic-runner's `provider.invoke` node: `in_map` shapes the provider's
/// input from the payload's `input` (JSON pointers and templates), `out_map`
/// the node's output from the provider's answer.
#[test]
fn provider_invoke_maps_its_input_and_output() {
    let dir = scratch("msg-provider-invoke");
    let (api, flags) = telegram_api(&dir, &[200]);
    let f = flow(
        &dir,
        "id: notify\nnodes:\n  send:\n    provider.invoke:\n      provider_id: bot-telegram\n      op: send\n      input: { chat: \"{{in.chat}}\", name: \"{{in.name}}\" }\n      in_map: { to: /input/chat, text: \"Hello {{input.name}}\" }\n      out_map: { delivered: /result/ok }\n",
    );
    let out = run(&f, &flags, &json!({"chat": 42, "name": "Ada"}));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json(), json!({"delivered": true}));
    let sent = api.received(1, Duration::from_secs(10));
    let body: Value = serde_json::from_str(sent[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"chat_id": "42", "text": "Hello Ada"}));
}

/// A channel this host cannot verify is refused at start unless the operator
/// says something in front verifies it; Teams needs the Bot Framework keys.
#[test]
fn channels_without_a_verifier_are_refused_at_start() {
    let dir = scratch("msg-start");
    std::fs::write(
        dir.join("default.ygtc"),
        "id: default\nnodes:\n  a:\n    emit.response: hi\n",
    )
    .unwrap();
    let target = dir.to_str().unwrap();
    let out = crate::support::host_shim(&[
        "serve",
        target,
        "--addr",
        "127.0.0.1:0",
        "--channel",
        "teams=bot-slack",
    ]);
    expect_failure(&out, 2, "--bot-framework-jwks URL|FILE");
    let out = crate::support::host_shim(&[
        "serve",
        target,
        "--addr",
        "127.0.0.1:0",
        "--channel",
        "webex=bot-slack",
    ]);
    expect_failure(
        &out,
        2,
        "add --unverified-channel webex only if something in front of it verifies them",
    );
    let out = crate::support::host_shim(&["serve", target, "--channel", "irc=bot-slack"]);
    expect_failure(&out, 2, "unknown channel `irc`");
}

// ---- a greentic bundle: provider packs and the app pack ------------------

/// A provider pack as greentic-messaging-providers ships one: the provider
/// component (here `bot-telegram`) under the pack's own id, its manifest as
/// CBOR, and `greentic.provider-extension.v1` naming it.
pub(crate) fn telegram_provider_pack(path: &Path) {
    let built = Path::new(host_shim::BUILT_COMPONENTS_DIR);
    let wasm = std::fs::read(built.join("bot-telegram.wasm")).unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(built.join("bot-telegram.manifest.json")).unwrap())
            .unwrap();
    let mut manifest_cbor = Vec::new();
    ciborium::into_writer(&manifest, &mut manifest_cbor).unwrap();
    let pack = json!({
        "schema_version": "pack-v1", "pack_id": "messaging-telegram", "version": "0.1.0",
        "kind": "provider", "publisher": "tests", "components": [], "flows": [],
        "extensions": {"greentic.provider-extension.v1": {
            "kind": "greentic.provider-extension.v1", "version": "1.0.0",
            "inline": {"providers": [{
                "provider_type": "messaging.telegram.bot", "capabilities": ["messaging"],
                "ops": ["ingest_http", "render_plan", "encode", "send_payload"],
                "config_schema_ref": "schemas/config.json",
                "runtime": {"component_ref": "messaging-telegram", "export": "schema-core-api",
                            "world": "greentic:provider/schema-core@1.0.0"}
            }]}
        }}
    });
    let pack: greentic_types::PackManifest = serde_json::from_value(pack).unwrap();
    let files = vec![
        ("components/messaging-telegram.wasm".to_string(), wasm),
        (
            "components/messaging-telegram.manifest.cbor".to_string(),
            manifest_cbor,
        ),
        (
            "manifest.cbor".to_string(),
            greentic_types::encode_pack_manifest(&pack).unwrap(),
        ),
    ];
    crate::packs::write_gtpack(path, files, |_| {});
}

/// An app pack with flow `default` (`yaml`) as packc keeps it.
fn app_pack(path: &Path, yaml: &str) {
    let compiled = json!({"schema_version": "flow-v1", "id": "default", "kind": "messaging",
        "entrypoints": {"default": "ask"}, "nodes": {}});
    let pack = json!({
        "schema_version": "pack-v1", "pack_id": "acme.bot", "version": "0.1.0",
        "kind": "application", "publisher": "tests", "components": [],
        "flows": [{"id": "default", "kind": "messaging", "flow": compiled, "tags": [], "entrypoints": ["default"]}],
    });
    let pack: greentic_types::PackManifest = serde_json::from_value(pack).unwrap();
    let files = vec![
        (
            "flows/default/flow.ygtc".to_string(),
            yaml.as_bytes().to_vec(),
        ),
        (
            "manifest.cbor".to_string(),
            greentic_types::encode_pack_manifest(&pack).unwrap(),
        ),
    ];
    crate::packs::write_gtpack(path, files, |_| {});
}

/// `serve BUNDLE`: the provider pack under `providers/messaging/` is the
/// Telegram channel (found by its provider extension, its component gated by
/// the manifest it ships), `packs/default.gtpack` the app — the same
/// conversation as with `--channel` flags — and a tenant's (or its team's)
/// own app pack takes that tenant's messages.
#[test]
fn a_bundle_serves_its_provider_packs_as_channels_and_its_app_pack() {
    let dir = scratch("msg-bundle");
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(bundle.join("providers/messaging")).unwrap();
    std::fs::create_dir_all(bundle.join("packs")).unwrap();
    telegram_provider_pack(&bundle.join("providers/messaging/messaging-telegram.gtpack"));
    app_pack(&bundle.join("packs/default.gtpack"), CONVERSATION);
    // Tenant beta has its own app pack, and its team `sales` another.
    let says = |text: &str| {
        format!("id: default\nnodes:\n  reply:\n    emit.response: {{ text: \"{text}\" }}\n")
    };
    std::fs::create_dir_all(bundle.join("packs/beta/sales")).unwrap();
    app_pack(
        &bundle.join("packs/beta/default.gtpack"),
        &says("beta's app"),
    );
    app_pack(
        &bundle.join("packs/beta/sales/default.gtpack"),
        &says("beta sales' app"),
    );
    let (api, mut flags) = telegram_api(&dir, &[200]);
    flags.extend(
        [
            "--addr",
            "127.0.0.1:0",
            "--state",
            "memory",
            "--secret",
            &format!("acme/TELEGRAM_WEBHOOK_SECRET={WEBHOOK_SECRET}"),
            "--secret",
            "beta/TELEGRAM_WEBHOOK_SECRET=whsec-beta",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = crate::support::serve(&bundle, &args);
    converse(&server, &api);
    // greentic-start's lookup: the team's pack, else the tenant's.
    let post = |path: &str, update_id: i64| {
        let url = format!("{}/v1/messaging/ingress/telegram/{path}", server.base);
        let body = update(update_id, 50, "hi");
        let headers = [("x-telegram-bot-api-secret-token", "whsec-beta")];
        crate::support::http("POST", &url, &body, &headers)
            .expect("an answer")
            .0
    };
    assert_eq!(post("beta", 10), 200);
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(sent_texts(&sent), [("50".into(), "beta's app".into())]);
    assert_eq!(post("beta/sales", 11), 200);
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(sent_texts(&sent), [("50".into(), "beta sales' app".into())]);
    assert_eq!(post("beta/support", 12), 200);
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(sent_texts(&sent), [("50".into(), "beta's app".into())]);

    // A bundle without its app pack is refused at start, saying where it goes.
    std::fs::remove_file(bundle.join("packs/default.gtpack")).unwrap();
    let out =
        crate::support::host_shim(&["serve", bundle.to_str().unwrap(), "--addr", "127.0.0.1:0"]);
    expect_failure(&out, 2, "packs/default.gtpack");
}

/// A channel's provider config (`--channel-config`, greentic's setup
/// answers) reaches every op: here the bot token and a self-hosted Bot API
/// server's base URL, so the reply goes there with that token.
#[test]
fn channel_config_reaches_the_provider() {
    let dir = scratch("msg-config");
    let config = dir.join("telegram.json");
    std::fs::write(
        &config,
        json!({"bot_token": "777:from-config", "api_base_url": "https://bots.internal/"})
            .to_string(),
    )
    .unwrap();
    let extra = [
        "--channel".into(),
        "telegram=bot-telegram".into(),
        "--channel-config".into(),
        format!("telegram={}", config.display()),
        "--secret".into(),
        format!("acme/TELEGRAM_WEBHOOK_SECRET={WEBHOOK_SECRET}"),
    ];
    let flow = "id: default\nnodes:\n  reply:\n    emit.response: { text: pong }\n";
    let (server, api) = channel_server(&dir, flow, "bots.internal", &[200], &extra);
    let status = post_update(
        &server,
        "acme",
        Some(WEBHOOK_SECRET),
        &update(1, 42, "ping"),
    );
    assert_eq!(status, 200);
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["path"], json!("/bot777:from-config/sendMessage"));
    assert_eq!(sent[0]["headers"]["host"], json!("bots.internal"));
    assert_eq!(sent_texts(&sent), [("42".into(), "pong".into())]);
}

/// Teams: the Bot Framework's keys are fetched from their JWKS URL at start
/// (here a local TLS server for `login.botframework.com`, trusted with
/// `--ca-cert`, reached with `--connect-to`); a token signed with them for
/// the tenant's app passes to the provider, others are 401.
#[test]
fn teams_tokens_are_checked_with_keys_fetched_from_the_jwks_url() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let dir = scratch("msg-teams-jwks");
    let host = "login.botframework.com";
    let (ca, cert, key) = test_ca(&dir, host, &format!("DNS:{host}"));
    let secret = b"a-bot-framework-test-key-of-32-bytes!";
    let k = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    };
    let jwks = json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": k}]});
    let handler = r#"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        data = args[0].encode() if self.path == "/v1/.well-known/keys" else b"{}"
        self.send_response(200 if self.path == "/v1/.well-known/keys" else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass
"#;
    let (mut keys_server, port, _) =
        crate::tls::python_https(handler, &cert, &key, &[jwks.to_string()]);
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(
        flows.join("default.ygtc"),
        "id: default\nnodes:\n  a:\n    emit.response: hi\n",
    )
    .unwrap();
    let server = crate::support::serve(
        &flows,
        &[
            "--addr",
            "127.0.0.1:0",
            "--state",
            "memory",
            "--channel",
            "teams=bot-slack",
            "--bot-framework-jwks",
            &format!("https://{host}/v1/.well-known/keys"),
            "--ca-cert",
            ca.to_str().unwrap(),
            "--connect-to",
            &format!("{host}:443:127.0.0.1:{port}"),
            "--secret",
            "acme/TEAMS_APP_ID=app-1",
            // The provider (Slack-shaped here) is linked with its HTTP grant.
            "--allow-host",
            "slack.com",
        ],
    );
    // Fetched at start: the key server is not needed after.
    let _ = keys_server.kill();
    let _ = keys_server.wait();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |audience: &str, signing: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let claims =
            json!({"iss": "https://api.botframework.com", "aud": audience, "exp": now + 600});
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(signing)).unwrap()
    };
    let post = |token: String| {
        let url = format!("{}/v1/messaging/ingress/teams/acme", server.base);
        let bearer = format!("Bearer {token}");
        let body = json!({"type": "url_verification", "challenge": "c-123"}).to_string();
        crate::support::http("POST", &url, &body, &[("authorization", &bearer)]).unwrap()
    };
    let accepted = post(token("app-1", secret));
    assert_eq!(accepted.0, 200, "{accepted:?}");
    assert!(accepted.1.contains("c-123"), "{accepted:?}");
    assert_eq!(post(token("app-2", secret)).0, 401);
    assert_eq!(
        post(token("app-1", b"another-key-another-key-another-key!")).0,
        401
    );
}
