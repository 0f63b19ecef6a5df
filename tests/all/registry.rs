//! Components and packs from a real OCI registry (Debian's `docker-registry`,
//! the CNCF distribution registry) started on loopback by each test, with
//! artifacts pushed as greentic publishes them (one layer of greentic's
//! media type, oras-style manifest with an empty config).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::packs::{gtpack_entries, manifest_cbor};
use crate::support::*;

const PACK_LAYER: &str = "application/vnd.greentic.gtpack.layer.v1+tar";
const WASM_LAYER: &str = "application/vnd.wasm.component.v1+wasm";
/// The user of the registries that want one, and its password: bcrypt hash
/// made for this test (`htpasswd -B`).
const USER: &str = "ada";
const PASSWORD: &str = "s3cret-pw";
const PASSWORD_BCRYPT: &str = "$2b$12$CB0MFEVXsdcJE6Wl1y3gSenPqR9kMrjlzLVKsUhkm5v6I6qdgZYYm";

/// A `docker-registry` on loopback, its storage in a scratch directory;
/// killed on drop.
struct OciRegistry {
    child: Child,
    host: String,
    storage: PathBuf,
    auth: RegistryAuth,
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OciRegistry {
    fn start(name: &str, with_password: bool) -> OciRegistry {
        let dir = scratch(&format!("oci-registry-{name}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if with_password {
            let htpasswd = dir.join("htpasswd");
            std::fs::write(&htpasswd, format!("{USER}:{PASSWORD_BCRYPT}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_file = dir.join("config.yml");
        std::fs::write(&config_file, config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", config_file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry runs (Debian package docker-registry; tests/run installs it)");
        let host = format!("127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while try_http("GET", &format!("http://{host}/v2/"), "", &[]).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        OciRegistry {
            child,
            host,
            storage,
            auth: if with_password {
                RegistryAuth::Basic(USER.into(), PASSWORD.into())
            } else {
                RegistryAuth::Anonymous
            },
        }
    }

    /// `oci://HOST/repo_tag`
    fn reference(&self, repo_tag: &str) -> String {
        format!("oci://{}/{repo_tag}", self.host)
    }

    /// Pushes `bytes` as the one layer (`media_type`) of `repo_tag`, as
    /// `oras push REF FILE:MEDIA_TYPE --artifact-type …` does; returns the
    /// manifest digest.
    fn push(
        &self,
        repo_tag: &str,
        bytes: Vec<u8>,
        media_type: &str,
        artifact_type: &str,
    ) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..Default::default()
        });
        let reference: Reference = format!("{}/{repo_tag}", self.host).parse().unwrap();
        let layer = ImageLayer::new(bytes, media_type.to_string(), None);
        let config = Config::new(
            b"{}".to_vec(),
            "application/vnd.oci.empty.v1+json".to_string(),
            None,
        );
        let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
        manifest.artifact_type = Some(artifact_type.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            client
                .push(&reference, &[layer], config, &self.auth, Some(manifest))
                .await
                .expect("push");
            client
                .fetch_manifest_digest(&reference, &self.auth)
                .await
                .unwrap()
        })
    }

    /// The stored bytes of the blob with `digest` (to tamper with them).
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// A flow whose one node calls `component` (the text component's `greet`).
fn flow_using(dir: &Path, name: &str, component: &str) -> PathBuf {
    let flow = dir.join(format!("{name}.ygtc"));
    std::fs::write(
        &flow,
        format!(
            "id: {name}\ntype: events\nnodes:\n  talk:\n    component.exec:\n      component: \"{component}\"\n      operation: greet\n      input:\n        name: Ada\n        greeting: Hi\n"
        ),
    )
    .unwrap();
    flow
}

fn json(out: &Outcome) -> serde_json::Value {
    assert_eq!(out.code, 0, "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn component_bytes(name: &str) -> Vec<u8> {
    std::fs::read(built_component(name)).unwrap()
}

/// A `.gtpack` whose greeting asset is `greeting`.
fn gtpack_bytes(dir: &Path, greeting: &str) -> Vec<u8> {
    let mut files = gtpack_entries(true);
    for (name, data) in files.iter_mut() {
        if name == "assets/greeting.txt" {
            *data = greeting.as_bytes().to_vec();
        }
    }
    files.push(("manifest.cbor".into(), manifest_cbor()));
    let path = dir.join(format!("{}.gtpack", sha256(greeting.as_bytes())));
    crate::packs::write_gtpack(&path, files, |_| {});
    std::fs::read(&path).unwrap()
}

#[test]
fn components_come_by_tag_digest_and_lock_file_and_offline_from_the_cache() {
    let dir = scratch("registry-components");
    let cache = dir.join("cache");
    let registry = OciRegistry::start("components", false);
    let tag = registry.reference("acme/components/talker:1.0");
    let first = registry.push(
        "acme/components/talker:1.0",
        component_bytes("text"),
        WASM_LAYER,
        "application/vnd.wasm.component.v1+wasm",
    );
    let flow = flow_using(&dir, "talk", &tag);
    let run = |flow: &Path, extra: &[&str]| {
        let mut args = vec!["run", flow.to_str().unwrap(), "-q"];
        args.extend_from_slice(extra);
        host_shim_with_cache(&args, &cache)
    };
    // By tag: fetched, run; the text component greets.
    let greeted = json(&run(&flow, &[]));
    assert_eq!(greeted["message"], "Hi, Ada!", "{greeted}");
    // By digest.
    let pinned = flow_using(
        &dir,
        "pinned",
        &format!("{}@{first}", registry.reference("acme/components/talker")),
    );
    assert_eq!(
        json(&run(&pinned, &["--offline"])),
        greeted,
        "a digest found in the cache needs no registry"
    );

    // Pinned in a lock file, then the tag moves to another component.
    let lock = dir.join("flows.lock.json");
    let pulled = host_shim_with_cache(
        &[
            "pull",
            flow.to_str().unwrap(),
            "--lock",
            lock.to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(pulled.code, 0, "{pulled}");
    assert!(
        pulled.stdout.contains(&format!("{tag} {first}")),
        "{pulled}"
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock).unwrap()).unwrap();
    assert_eq!(written["schema_version"], 1);
    assert_eq!(written["components"][0]["ref"], tag.as_str());
    assert_eq!(written["components"][0]["digest"], first.as_str());
    // As greentic's publish scripts push components (`oras push REF
    // FILE:application/vnd.greentic.wasm.component`, oras's default type).
    let second = registry.push(
        "acme/components/talker:1.0",
        component_bytes("echo"),
        "application/vnd.greentic.wasm.component",
        "application/vnd.unknown.artifact.v1",
    );
    assert_ne!(first, second);
    // Without the lock the tag is asked afresh: the echo component now.
    let echoed = json(&run(&flow, &[]));
    assert_eq!(echoed["name"], "Ada", "{echoed}");
    assert!(echoed.get("message").is_none(), "{echoed}");
    // With it, the pinned bytes, offline, with the registry gone.
    drop(registry);
    let lock_arg = lock.to_str().unwrap();
    assert_eq!(
        json(&run(&flow, &["--lock", lock_arg, "--offline"])),
        greeted
    );
    // Offline a tag without a pin is refused, naming it.
    let out = run(&flow, &["--offline"]);
    expect_failure(
        &out,
        2,
        &format!("`{tag}`: not in the cache and --offline forbids fetching it"),
    );
    assert!(
        out.stderr.contains("node `talk`") && out.stderr.contains("--lock"),
        "{out}"
    );
    // A fresh cache offline has nothing, even pinned.
    let empty = dir.join("empty-cache");
    let out = host_shim_with_cache(
        &[
            "run",
            flow.to_str().unwrap(),
            "-q",
            "--lock",
            lock_arg,
            "--offline",
        ],
        &empty,
    );
    expect_failure(&out, 2, "--offline forbids fetching it");
    // Unreachable registry: a clear error, no panic.
    let out = host_shim_with_cache(&["run", flow.to_str().unwrap(), "-q"], &empty);
    expect_failure(&out, 2, &format!("`{tag}`: fetching the manifest"));
}

#[test]
fn tampered_layers_wrong_media_types_and_unknown_tags_are_refused() {
    let dir = scratch("registry-tamper");
    let registry = OciRegistry::start("tamper", false);
    let bytes = component_bytes("text");
    let layer = sha256(&bytes);
    registry.push("acme/talker:1.0", bytes, WASM_LAYER, WASM_LAYER);
    // The registry's stored copy changed: same length, other bytes.
    let blob = registry.blob_file(&layer);
    let mut stored = std::fs::read(&blob).unwrap();
    let last = stored.len() - 1;
    stored[last] ^= 0xff;
    std::fs::write(&blob, stored).unwrap();
    let flow = flow_using(&dir, "tampered", &registry.reference("acme/talker:1.0"));
    let out = host_shim_with_cache(&["run", flow.to_str().unwrap(), "-q"], &dir.join("cache1"));
    expect_failure(&out, 2, "its layer has digest");
    assert!(out.stderr.contains(&format!("expected {layer}")), "{out}");
    assert!(
        out.stderr.contains(&registry.reference("acme/talker:1.0")),
        "{out}"
    );

    // A container image layer is not a component.
    registry.push(
        "acme/image:1.0",
        b"not a component".to_vec(),
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.config.v1+json",
    );
    let flow = flow_using(&dir, "image", &registry.reference("acme/image:1.0"));
    let out = host_shim_with_cache(&["run", flow.to_str().unwrap(), "-q"], &dir.join("cache2"));
    expect_failure(
        &out,
        2,
        "not a component: its layers are [application/vnd.oci.image.layer.v1.tar]",
    );
    // A component media type over bytes that are no component.
    registry.push(
        "acme/liar:1.0",
        b"PK\x03\x04 a zip".to_vec(),
        WASM_LAYER,
        WASM_LAYER,
    );
    let flow = flow_using(&dir, "liar", &registry.reference("acme/liar:1.0"));
    let out = host_shim_with_cache(&["run", flow.to_str().unwrap(), "-q"], &dir.join("cache2"));
    expect_failure(&out, 2, "does not hold a wasm file");
    // No such tag.
    let flow = flow_using(&dir, "ghost", &registry.reference("acme/talker:9.9"));
    let out = host_shim_with_cache(&["run", flow.to_str().unwrap(), "-q"], &dir.join("cache2"));
    expect_failure(&out, 2, "not found in the registry");
    // `--stub-missing` stands in for what the registry cannot give, as for a
    // missing file.
    let out = host_shim_with_cache(
        &["check", flow.to_str().unwrap(), "--stub-missing"],
        &dir.join("cache2"),
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("the echo component stands in"), "{out}");
    // A digest in the flow that the registry's manifest does not have.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let flow = flow_using(
        &dir,
        "wrongdigest",
        &format!("{}@{wrong}", registry.reference("acme/talker")),
    );
    let out = host_shim_with_cache(&["run", flow.to_str().unwrap(), "-q"], &dir.join("cache2"));
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(&wrong) && out.stdout.is_empty(),
        "{out}"
    );
}

#[test]
fn a_registry_that_wants_credentials_gets_them_only_when_given() {
    let dir = scratch("registry-auth");
    let registry = OciRegistry::start("auth", true);
    registry.push(
        "acme/talker:1.0",
        component_bytes("text"),
        WASM_LAYER,
        WASM_LAYER,
    );
    let flow = flow_using(&dir, "talk", &registry.reference("acme/talker:1.0"));
    let cache = dir.join("cache");
    let run = |env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        let cache = cache.to_str().unwrap().to_string();
        env.push(("GREENTIC_CACHE_DIR", &cache));
        // No docker config of the machine's user.
        let nowhere = dir.join("no-docker");
        let nowhere = nowhere.to_str().unwrap().to_string();
        if !env.iter().any(|(k, _)| *k == "DOCKER_CONFIG") {
            env.push(("DOCKER_CONFIG", &nowhere));
        }
        host_shim_env(&["run", flow.to_str().unwrap(), "-q"], &env)
    };
    let out = run(&[]);
    expect_failure(
        &out,
        2,
        &format!("the registry {} refused access", registry.host),
    );
    let out = run(&[
        ("GREENTIC_REGISTRY_HOST", &registry.host),
        ("GREENTIC_REGISTRY_USERNAME", USER),
        ("GREENTIC_REGISTRY_PASSWORD", "wrong"),
    ]);
    expect_failure(&out, 2, "refused access");
    // Credentials for another host are not sent here.
    let out = run(&[
        ("GREENTIC_REGISTRY_HOST", "ghcr.io"),
        ("GREENTIC_REGISTRY_USERNAME", USER),
        ("GREENTIC_REGISTRY_PASSWORD", PASSWORD),
    ]);
    expect_failure(&out, 2, "refused access");
    let out = run(&[
        ("GREENTIC_REGISTRY_HOST", &registry.host),
        ("GREENTIC_REGISTRY_USERNAME", USER),
        ("GREENTIC_REGISTRY_PASSWORD", PASSWORD),
    ]);
    assert_eq!(json(&out)["message"], "Hi, Ada!");
    // `docker login`'s config file.
    let docker = dir.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.host
        ),
    )
    .unwrap();
    std::fs::remove_dir_all(&cache).unwrap();
    let out = run(&[("DOCKER_CONFIG", docker.to_str().unwrap())]);
    assert_eq!(json(&out)["message"], "Hi, Ada!");
}

#[test]
fn packs_run_by_reference_and_a_served_tag_is_swapped_live() {
    let dir = scratch("registry-packs");
    let registry = OciRegistry::start("packs", false);
    let repo_tag = "acme/packs/app:stable";
    registry.push(
        repo_tag,
        gtpack_bytes(&dir, "version one"),
        PACK_LAYER,
        "application/vnd.greentic.gtpack.v1",
    );
    let reference = registry.reference(repo_tag);
    // run a pack by reference (its entry flow, and a named one).
    let out = host_shim_with_cache(&["run", &reference, "-q"], &dir.join("cache"));
    assert_eq!(json(&out)["greeting"], "VERSION ONE", "{out}");
    let out = host_shim_with_cache(
        &[
            "run",
            &format!("{reference}#shout"),
            "-q",
            "--input",
            r#"{"text": "hey"}"#,
        ],
        &dir.join("cache"),
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("HEY"), "{out}");
    // pull pins the pack; the lock then runs it offline.
    let lock = dir.join("pack.lock.json");
    let pulled = host_shim_with_cache(
        &["pull", &reference, "--lock", lock.to_str().unwrap()],
        &dir.join("cache"),
    );
    assert_eq!(pulled.code, 0, "{pulled}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock).unwrap()).unwrap();
    assert_eq!(written["packs"][0]["ref"], reference.as_str(), "{written}");

    // Served from the tag under load while the tag moves twice.
    let server = serve(
        &PathBuf::from(&reference),
        &["--addr", "127.0.0.1:0", "--registry-poll", "200ms", "-q"],
    );
    let url = format!("{}/flows/main", server.base);
    let load = GreetingLoad::start(&url);
    wait_for_greeting(&url, "VERSION ONE");
    let served_pack = || {
        let metrics = http("GET", &format!("{}/metrics", server.base), "", &[])
            .unwrap()
            .1;
        let lines: Vec<String> = metrics
            .lines()
            .filter(|l| l.starts_with("greentic_pack_served{"))
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 1, "one version served: {metrics}");
        assert!(
            lines[0].contains("pack=\"dev.tests.greeter\"") && lines[0].ends_with(" 1"),
            "{lines:?}"
        );
        lines[0].clone()
    };
    let first_version = served_pack();
    registry.push(
        repo_tag,
        gtpack_bytes(&dir, "version two"),
        PACK_LAYER,
        "application/vnd.greentic.gtpack.v1",
    );
    wait_for_greeting(&url, "VERSION TWO");
    // A tag moved to something that is not a pack is refused; the last
    // good version keeps serving.
    registry.push(repo_tag, component_bytes("echo"), WASM_LAYER, WASM_LAYER);
    wait_for_metric(
        &server,
        "greentic_pack_reloads_total{outcome=\"refused\"} 1",
    );
    registry.push(
        repo_tag,
        gtpack_bytes(&dir, "version three"),
        PACK_LAYER,
        "application/vnd.greentic.gtpack.v1",
    );
    wait_for_greeting(&url, "VERSION THREE");
    load.finish(&["VERSION ONE", "VERSION TWO", "VERSION THREE"]);
    assert_ne!(
        served_pack(),
        first_version,
        "the metric names the new version"
    );
    let metrics = http("GET", &format!("{}/metrics", server.base), "", &[])
        .unwrap()
        .1;
    assert!(
        metrics.contains("greentic_pack_reloads_total{outcome=\"reloaded\"} 2"),
        "{metrics}"
    );
    drop(server);
    // With the lock, the pinned version is served (the tag has moved on).
    let pinned = serve(
        &PathBuf::from(&reference),
        &[
            "--addr",
            "127.0.0.1:0",
            "--lock",
            lock.to_str().unwrap(),
            "-q",
        ],
    );
    let (_, body, _) = http("POST", &format!("{}/flows/main", pinned.base), "{}", &[]).unwrap();
    assert!(body.contains("VERSION ONE"), "{body}");
}
