//! TLS for tests: a throwaway CA (openssl) and a channel API stand-in (Python's
//! `ssl` over `http.server`) that records what it is sent.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use serde_json::Value;

/// A CA and a certificate it signed for `name` (`san`: `IP:127.0.0.1`,
/// `DNS:api.example.com`), made with openssl in `dir`:
/// (CA PEM, leaf certificate PEM, leaf key PEM).
pub fn test_ca(dir: &Path, name: &str, san: &str) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian: apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=greentic test CA",
                "-days",
                "2",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                &format!("/CN={name}"),
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("leaf.ext"),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
}

/// A channel's API on loopback over HTTPS (or plain HTTP), killed on drop. Each POST is
/// recorded (`{method, path, headers, body}`) and answered with the next of
/// `statuses` (the last repeats): 200 with `{"ok": true, …}`, others with
/// `{"ok": false, "description": …}` — the Bot API's shapes.
pub struct ChannelApi {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    requests: Receiver<Value>,
}

impl Drop for ChannelApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChannelApi {
    /// Starts one with the certificate `cert`/`key`.
    pub fn start(cert: &Path, key: &Path, statuses: &[u16]) -> ChannelApi {
        ChannelApi::serve(Some((cert, key)), statuses)
    }

    /// Starts one over plain HTTP (for hosts that trust only public CAs).
    pub fn plain(statuses: &[u16]) -> ChannelApi {
        ChannelApi::serve(None, statuses)
    }

    fn serve(tls: Option<(&Path, &Path)>, statuses: &[u16]) -> ChannelApi {
        let handler = r#"
statuses = [int(s) for s in args[0].split(",")]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        print(json.dumps({"method": "POST", "path": self.path, "status": status,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body.decode("utf-8", "replace")}), flush=True)
        if status == 200:
            answer = {"ok": True, "result": {"message_id": 1}}
        else:
            answer = {"ok": False, "error_code": status, "description": "HTTP %d from the stand-in" % status}
        data = json.dumps(answer).encode()
        self.send_response(status); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass
"#;
        let statuses: Vec<String> = statuses.iter().map(u16::to_string).collect();
        let (child, port, lines) = python_server(handler, tls, &[statuses.join(",")]);
        let (tx, requests) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        ChannelApi {
            child,
            port,
            requests,
        }
    }

    /// The first `n` requests, waiting up to `wait` for them (fewer if they
    /// do not come), then any more already there.
    pub fn received(&self, n: usize, wait: Duration) -> Vec<Value> {
        let deadline = std::time::Instant::now() + wait;
        let mut all = Vec::new();
        while all.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.requests.recv_timeout(left) {
                Ok(request) => all.push(request),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        while let Ok(more) = self.requests.try_recv() {
            all.push(more);
        }
        all
    }
}

/// Runs Python's `http.server` over TLS (`cert`, `key`) on a free loopback
/// port with `handler`, Python source defining the request handler class `H`
/// (it sees `args`, the strings given); returns the process, the port and
/// the rest of its stdout.
pub fn python_https(
    handler: &str,
    cert: &Path,
    key: &Path,
    args: &[String],
) -> (
    std::process::Child,
    u16,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    python_server(handler, Some((cert, key)), args)
}

/// [`python_https`], or plain HTTP when `tls` is `None`.
fn python_server(
    handler: &str,
    tls: Option<(&Path, &Path)>,
    args: &[String],
) -> (
    std::process::Child,
    u16,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let wrap = if tls.is_some() {
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)\n\
         server.socket = ctx.wrap_socket(server.socket, server_side=True)\n"
    } else {
        ""
    };
    let script = format!(
        "import http.server, json, ssl, sys\ncert, key, args = sys.argv[1], sys.argv[2], sys.argv[3:]\n{handler}\n\
         server = http.server.ThreadingHTTPServer((\"127.0.0.1\", 0), H)\n{wrap}\
         print(server.server_address[1], flush=True)\nserver.serve_forever()\n"
    );
    let (cert, key) = tls.unwrap_or((Path::new("-"), Path::new("-")));
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .arg(cert)
        .arg(key)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let port = first
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no port: {first:?}"));
    (child, port, lines)
}
