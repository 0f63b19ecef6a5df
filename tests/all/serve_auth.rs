//! Serving securely: who a request acts for is proven by its credential.
//! Each refusal is checked to have run nothing (no run counted) and read nothing.

use std::path::Path;
use std::process::Command;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::*;

fn call(
    server: &Served,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, Vec<(String, String)>) {
    let (status, text, headers) =
        http(method, &format!("{}{path}", server.base), body, headers).expect("a response");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

fn start(target: &Path, extra: &[&str]) -> Served {
    serve(target, extra)
}

fn sha(token: &str) -> String {
    format!("sha256:{:x}", Sha256::digest(token.as_bytes()))
}

fn flows(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    std::fs::copy(
        workspace().join("examples/counter/flow.yaml"),
        dir.join("counter.yaml"),
    )
    .unwrap();
    std::fs::copy(
        workspace().join("examples/hello/flow.yaml"),
        dir.join("hello.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("ask.ygtc"),
        "id: ask\nnodes:\n  wait:\n    session.wait: name\n    routing: [{ to: answer }]\n  answer:\n    component.exec: { component: echo, input: { hello: \"{{in.text}}\", tenant: \"{{state.tenant.tenant}}\" } }\n",
    )
    .unwrap();
    dir
}

fn metric(server: &Served, line: &str) -> bool {
    let (_, text, _) = call(server, "GET", "/metrics", "", &[]);
    text.as_str().unwrap_or("").lines().any(|l| l == line)
}

#[test]
fn bearer_tokens_decide_the_tenant_and_the_flows() {
    let dir = flows("auth-tokens");
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!(
            "tokens:\n  - {{ name: acme-bot, sha256: \"{}\", tenant: acme, flows: [counter, ask, hello] }}\n  - {{ name: globex-bot, sha256: \"{}\", tenant: globex, flows: [counter, ask] }}\n  - {{ name: chatty, sha256: \"{}\", tenant: chatty, rps: 1 }}\n",
            sha("acme-secret"),
            sha("globex-secret"),
            sha("chatty-secret")
        ),
    )
    .unwrap();
    assert!(
        !std::fs::read_to_string(&tokens)
            .unwrap()
            .contains("acme-secret")
    );
    let db = format!("file:{}", dir.join("state.redb").display());
    let server = start(
        &dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--auth",
            "tokens",
            "--tokens",
            tokens.to_str().unwrap(),
            "--state",
            &db,
        ],
    );
    let acme = [("authorization", "Bearer acme-secret")];
    let globex = [("authorization", "Bearer globex-secret")];

    // No credential, a wrong one: 401, nothing run.
    let (status, _, headers) = call(&server, "POST", "/flows/counter", "{}", &[]);
    assert_eq!(status, 401);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "www-authenticate" && v == "Bearer")
    );
    assert_eq!(
        call(
            &server,
            "POST",
            "/flows/counter",
            "{}",
            &[("authorization", "Bearer guess")]
        )
        .0,
        401
    );
    // A forged tenant header: 403, nothing run, counted.
    let (status, body, _) = call(
        &server,
        "POST",
        "/flows/counter",
        "{}",
        &[acme[0], ("x-greentic-tenant", "globex")],
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-greentic-tenant says `globex`")
    );
    assert!(metric(
        &server,
        r#"greentic_requests_denied_total{reason="tenant_mismatch"} 1"#
    ));
    // A flow the token may not run: 403.
    let (status, body, _) = call(&server, "POST", "/flows/hello", "{}", &globex);
    assert_eq!(status, 403, "{body}");
    assert!(metric(
        &server,
        r#"greentic_requests_denied_total{reason="flow_not_allowed"} 1"#
    ));
    let (_, metrics, _) = call(&server, "GET", "/metrics", "", &[]);
    assert!(
        !metrics
            .as_str()
            .unwrap()
            .contains(r#"greentic_runs_total{flow="counter""#),
        "a refused request ran: {metrics}"
    );

    // Two tenants' state, interleaved: each counts its own.
    let mut seen = Vec::new();
    for who in [&acme, &globex, &acme, &acme, &globex] {
        let (status, body, _) = call(&server, "POST", "/flows/counter", "{}", who);
        assert_eq!(status, 200, "{body}");
        seen.push((
            body["tenant"].as_str().unwrap().to_string(),
            body["count"].as_u64().unwrap(),
        ));
    }
    let expected: Vec<(String, u64)> = [
        ("acme", 1),
        ("globex", 1),
        ("acme", 2),
        ("acme", 3),
        ("globex", 2),
    ]
    .into_iter()
    .map(|(t, c)| (t.to_string(), c))
    .collect();
    assert_eq!(seen, expected);

    // Session ids are per tenant: globex's `conv-1` is its own conversation
    // (it starts the flow), and acme's is untouched.
    let session = ("x-greentic-session", "conv-1");
    let (_, waiting, _) = call(&server, "POST", "/flows/ask", "{}", &[acme[0], session]);
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    let (status, body, _) = call(
        &server,
        "POST",
        "/flows/ask",
        r#"{"text": "Mallory"}"#,
        &[globex[0], session],
    );
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("waiting")),
        "{body}"
    );
    let (_, done, _) = call(
        &server,
        "POST",
        "/flows/ask",
        r#"{"text": "Ada"}"#,
        &[acme[0], session],
    );
    assert_eq!(done, json!({"hello": "Ada", "tenant": "acme"}));

    // A credential over its requests per second is shed: 20 sent at once
    // against 1/s.
    let statuses = at_once(
        &format!("{}/flows/counter", server.base),
        ("authorization", "Bearer chatty-secret"),
        20,
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(metric(
        &server,
        &format!(
            "greentic_requests_denied_total{{reason=\"credential_rate\"}} {}",
            statuses.iter().filter(|s| **s == 429).count()
        )
    ));
}

fn jwt(secret: &[u8], claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn signed_jwts_decide_the_tenant_and_bad_ones_are_refused() {
    let dir = flows("auth-jwt");
    let secret = b"0123456789abcdef0123456789abcdef-test";
    std::fs::write(dir.join("hs.key"), secret).unwrap();
    let server = start(
        &dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--auth",
            "jwt",
            "--jwt-key",
            dir.join("hs.key").to_str().unwrap(),
            "--jwt-issuer",
            "https://idp.test",
            "--jwt-audience",
            "flows",
        ],
    );
    let post = |token: &str| {
        let auth = format!("Bearer {token}");
        call(
            &server,
            "POST",
            "/flows/counter",
            "{}",
            &[("authorization", auth.as_str())],
        )
    };
    let good = jwt(
        secret,
        json!({"iss": "https://idp.test", "aud": "flows", "sub": "u1", "tenant": "acme", "exp": now() + 300}),
    );
    let (status, body, _) = post(&good);
    assert_eq!(
        (status, body["tenant"].clone()),
        (200, json!("acme")),
        "{body}"
    );
    for (what, token) in [
        (
            "expired",
            jwt(
                secret,
                json!({"iss": "https://idp.test", "aud": "flows", "tenant": "acme", "exp": now() - 600}),
            ),
        ),
        (
            "not yet valid",
            jwt(
                secret,
                json!({"iss": "https://idp.test", "aud": "flows", "tenant": "acme", "exp": now() + 600, "nbf": now() + 300}),
            ),
        ),
        (
            "badly signed",
            jwt(
                b"another-secret-another-secret-another",
                json!({"iss": "https://idp.test", "aud": "flows", "tenant": "acme", "exp": now() + 300}),
            ),
        ),
        (
            "another issuer",
            jwt(
                secret,
                json!({"iss": "https://evil.test", "aud": "flows", "tenant": "acme", "exp": now() + 300}),
            ),
        ),
        (
            "another audience",
            jwt(
                secret,
                json!({"iss": "https://idp.test", "aud": "other", "tenant": "acme", "exp": now() + 300}),
            ),
        ),
        // A configured issuer and audience are required claims, not only compared when present.
        (
            "no iss",
            jwt(
                secret,
                json!({"aud": "flows", "tenant": "acme", "exp": now() + 300}),
            ),
        ),
        (
            "no aud",
            jwt(
                secret,
                json!({"iss": "https://idp.test", "tenant": "acme", "exp": now() + 300}),
            ),
        ),
        (
            "no exp",
            jwt(
                secret,
                json!({"iss": "https://idp.test", "aud": "flows", "tenant": "acme"}),
            ),
        ),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        let (status, body, _) = post(&token);
        assert_eq!(status, 401, "{what}: {body}");
    }
    let (status, _, _) = post(&jwt(
        secret,
        json!({"iss": "https://idp.test", "aud": "flows", "exp": now() + 300}),
    ));
    assert_eq!(status, 403, "a JWT without a tenant");
    // Only the good one ran.
    assert!(metric(
        &server,
        r#"greentic_runs_total{flow="counter",outcome="completed"} 1"#
    ));
}

#[test]
fn off_loopback_serving_needs_credentials_and_metrics_its_token() {
    let dir = flows("auth-remote");
    let out = host_shim(&["serve", dir.to_str().unwrap(), "--addr", "0.0.0.0:0"]);
    expect_failure(&out, 2, "serving is for loopback only");
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!(
            "tokens:\n  - {{ name: a, sha256: \"{}\", tenant: acme }}\n",
            sha("t")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("metrics.sha256"), sha("metrics-secret")).unwrap();
    let server = start(
        &dir,
        &[
            "--addr",
            "0.0.0.0:0",
            "--auth",
            "tokens",
            "--tokens",
            tokens.to_str().unwrap(),
            "--metrics-token-file",
            dir.join("metrics.sha256").to_str().unwrap(),
        ],
    );
    assert_eq!(call(&server, "GET", "/metrics", "", &[]).0, 401);
    assert_eq!(
        call(
            &server,
            "GET",
            "/metrics",
            "",
            &[("authorization", "Bearer t")]
        )
        .0,
        401,
        "a run token is not the metrics token"
    );
    assert_eq!(
        call(
            &server,
            "GET",
            "/metrics",
            "",
            &[("authorization", "Bearer metrics-secret")]
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &server,
            "POST",
            "/flows/counter",
            "{}",
            &[("authorization", "Bearer t")]
        )
        .0,
        200
    );
}

/// Runs `openssl` with `args` (key generation for the signed-JWT tests).
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn es256_jwts_verify_with_a_public_key_and_algorithm_confusion_is_refused() {
    let dir = flows("auth-es256");
    let (key, pkcs8, public) = (
        dir.join("ec.pem"),
        dir.join("ec.p8"),
        dir.join("ec.pub.pem"),
    );
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        key.to_str().unwrap(),
        "-out",
        pkcs8.to_str().unwrap(),
    ]);
    openssl(&[
        "ec",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let server = start(
        &dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--auth",
            "jwt",
            "--jwt-key",
            public.to_str().unwrap(),
        ],
    );
    let claims = json!({"tenant": "acme", "exp": now() + 300});
    let signing = EncodingKey::from_ec_pem(&std::fs::read(&pkcs8).unwrap()).unwrap();
    let good = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &signing).unwrap();
    let auth = format!("Bearer {good}");
    let (status, body, _) = call(
        &server,
        "POST",
        "/flows/counter",
        "{}",
        &[("authorization", auth.as_str())],
    );
    assert_eq!(
        (status, body["tenant"].clone()),
        (200, json!("acme")),
        "{body}"
    );
    // The public key used as an HMAC secret: refused, not accepted.
    let forged = jwt(&std::fs::read(&public).unwrap(), claims);
    let auth = format!("Bearer {forged}");
    assert_eq!(
        call(
            &server,
            "POST",
            "/flows/counter",
            "{}",
            &[("authorization", auth.as_str())]
        )
        .0,
        401
    );
}

/// Serves the counter and a `slow` flow (its node waits on a gate) to two
/// tokens: `a` (tenant acme, with `a_limits` in its entry) and `b` (globex),
/// with `flags`.
fn credential_server(name: &str, a_limits: &str, flags: &[&str]) -> Served {
    let dir = flows(name);
    std::fs::write(
        dir.join("slow.ygtc"),
        "id: slow\nnodes:\n  fetch:\n    component.exec: { component: http-fetch, input: { url: \"{{in.url}}\" } }\n",
    )
    .unwrap();
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!(
            "tokens:\n  - {{ name: a, sha256: \"{}\", tenant: acme{a_limits} }}\n  - {{ name: b, sha256: \"{}\", tenant: globex }}\n",
            sha("a-secret"),
            sha("b-secret")
        ),
    )
    .unwrap();
    let mut args = vec![
        "--addr",
        "127.0.0.1:0",
        "--auth",
        "tokens",
        "--tokens",
        tokens.to_str().unwrap(),
        "--allow-host",
        "127.0.0.1:*",
    ];
    args.extend_from_slice(flags);
    start(&dir, &args)
}

const A: (&str, &str) = ("authorization", "Bearer a-secret");
const B: (&str, &str) = ("authorization", "Bearer b-secret");

/// With `a` allowed one run: while its run is in progress, its next request
/// is shed and `b`'s is served; then `a` is served again.
fn one_run_for_a(server: &Served) {
    let (slow, open) = crate::serve::slow_run(server, &[A]);
    let (status, body, _) = call(server, "POST", "/flows/counter", "{}", &[A]);
    assert_eq!(status, 429, "{body}");
    assert!(metric(
        server,
        r#"greentic_requests_denied_total{reason="credential_busy"} 1"#
    ));
    let (status, body, _) = call(server, "POST", "/flows/counter", "{}", &[B]);
    assert_eq!(
        (status, body["tenant"].clone()),
        (200, json!("globex")),
        "{body}"
    );
    open.send(()).unwrap();
    assert_eq!(slow.join().unwrap().0, 200);
    assert_eq!(
        call(server, "POST", "/flows/counter", "{}", &[A]).0,
        200,
        "the slot is free again"
    );
}

/// The statuses of `n` requests to `url` with `header`, sent at once
/// (released together by a barrier).
fn at_once(url: &str, header: (&'static str, &'static str), n: usize) -> Vec<u16> {
    let start = std::sync::Arc::new(std::sync::Barrier::new(n));
    (0..n)
        .map(|_| {
            let (url, start) = (url.to_string(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                http("POST", &url, "{}", &[header]).expect("a response").0
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn a_credential_at_its_concurrent_runs_is_shed_and_the_others_are_not() {
    let server = credential_server("auth-concurrency", ", max_concurrent: 1", &[]);
    one_run_for_a(&server);
}

/// RS256 with a PEM public key; a JWKS picked by `kid` (its own algorithm
/// only, an unknown or missing `kid` refused); an HMAC secret under 32
/// bytes refused at start.
#[test]
fn rs256_keys_jwks_by_kid_and_short_secrets() {
    let dir = flows("auth-rs256-jwks");
    let (private, public) = (dir.join("rsa.p8"), dir.join("rsa.pub.pem"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let claims = json!({"tenant": "acme", "exp": now() + 300});
    let status_with = |server: &Served, token: &str| {
        let auth = format!("Bearer {token}");
        call(
            server,
            "POST",
            "/flows/counter",
            "{}",
            &[("authorization", auth.as_str())],
        )
        .0
    };

    let rsa = start(
        &dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--auth",
            "jwt",
            "--jwt-key",
            public.to_str().unwrap(),
        ],
    );
    let signing = EncodingKey::from_rsa_pem(&std::fs::read(&private).unwrap()).unwrap();
    let good = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &signing).unwrap();
    assert_eq!(status_with(&rsa, &good), 200);
    // The public key as an HMAC secret (algorithm confusion): refused.
    assert_eq!(
        status_with(&rsa, &jwt(&std::fs::read(&public).unwrap(), claims.clone())),
        401
    );
    drop(rsa);

    let (key_a, key_b) = (
        b"kid-a-secret-of-at-least-32-bytes!!",
        b"kid-b-secret-of-at-least-32-bytes!!",
    );
    let b64 = |k: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k)
    };
    let jwks = dir.join("keys.jwks");
    std::fs::write(
        &jwks,
        json!({"keys": [
            {"kty": "oct", "kid": "a", "alg": "HS256", "k": b64(key_a)},
            {"kty": "oct", "kid": "b", "alg": "HS512", "k": b64(key_b)},
        ]})
        .to_string(),
    )
    .unwrap();
    let server = start(
        &dir,
        &[
            "--addr",
            "127.0.0.1:0",
            "--auth",
            "jwt",
            "--jwks",
            jwks.to_str().unwrap(),
        ],
    );
    let signed = |kid: Option<&str>, algorithm: Algorithm, key: &[u8]| {
        let mut header = Header::new(algorithm);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key)).unwrap()
    };
    assert_eq!(
        status_with(&server, &signed(Some("a"), Algorithm::HS256, key_a)),
        200
    );
    assert_eq!(
        status_with(&server, &signed(Some("b"), Algorithm::HS512, key_b)),
        200
    );
    // Another key than its kid's, no kid, an unknown kid, another algorithm.
    assert_eq!(
        status_with(&server, &signed(Some("a"), Algorithm::HS256, key_b)),
        401
    );
    assert_eq!(
        status_with(&server, &signed(None, Algorithm::HS256, key_a)),
        401
    );
    assert_eq!(
        status_with(&server, &signed(Some("zzz"), Algorithm::HS256, key_a)),
        401
    );
    assert_eq!(
        status_with(&server, &signed(Some("b"), Algorithm::HS256, key_b)),
        401
    );
    drop(server);

    let short = dir.join("short.key");
    std::fs::write(&short, b"only-16-bytes!!!").unwrap();
    let out = crate::support::host_shim(&[
        "serve",
        dir.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
        "--auth",
        "jwt",
        "--jwt-key",
        short.to_str().unwrap(),
    ]);
    crate::support::expect_failure(&out, 2, "shorter than 32 bytes");
}

/// `--credential-max-concurrent` and `--credential-rps` apply to every
/// credential that sets no limit of its own, each credential counted alone.
#[test]
fn server_wide_credential_limits_apply_to_each_credential() {
    let server = credential_server(
        "auth-credential-flags",
        "",
        // a's three requests in a row fit 3/s.
        &["--credential-max-concurrent", "1", "--credential-rps", "3"],
    );
    one_run_for_a(&server);
    // b's 20 at once against 3 per second: most are shed for the rate (one
    // of the few within it may find b's one run slot taken).
    let statuses = at_once(&format!("{}/flows/counter", server.base), B, 20);
    let shed = statuses.iter().filter(|s| **s == 429).count() as u64;
    let (_, text, _) = http("GET", &format!("{}/metrics", server.base), "", &[]).unwrap();
    let denied = |reason: &str| -> u64 {
        let prefix = format!("greentic_requests_denied_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    assert!(denied("credential_rate") >= 15, "{statuses:?}\n{text}");
    assert_eq!(
        denied("credential_rate") + denied("credential_busy"),
        shed + 1,
        "{text}"
    );
}
