//! Packs: a pack directory and the `.gtpack` archive packc would make of it
//! (written here with a zip writer, the manifest encoded by greentic-types),
//! run, checked and composed through the binary.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

const MAIN: &str = r#"id: main
type: messaging
nodes:
  read:
    component.exec: { component: acme.reader, input: { path: greeting.txt } }
    routing: [{ to: call }]
  call:
    flow.call: { flow: shout, input: { text: "{{node.read.text}}" } }
    routing: [{ to: done }]
  done:
    component.exec: { component: echo, operation: upper, input: { greeting: "{{node.read.text}}", shout: "{{node.call.text}}" } }
"#;

const SHOUT: &str = r#"id: shout
type: messaging
nodes:
  up:
    component.exec: { component: acme.upper, operation: upper, input: { text: "{{in.text}}" } }
"#;

const PACK_YAML: &str = r#"pack_id: dev.tests.greeter
version: 0.1.0
kind: application
publisher: tests
flows:
  - { id: main, file: flows/main.ygtc, entrypoints: [default] }
  - { id: shout, file: flows/shout.ygtc }
components:
  - { id: acme.reader, wasm: components/acme.reader.wasm }
"#;

/// The files of the test pack, by path inside it. `echo` is the pack's own
/// component (a copy of legacy-v05): the pack's components come first.
fn pack_files() -> Vec<(String, Vec<u8>)> {
    let read = |name: &str| std::fs::read(built_component(name)).unwrap();
    let manifest = std::fs::read(
        Path::new(host_shim::BUILT_COMPONENTS_DIR).join("asset-reader.manifest.json"),
    )
    .unwrap();
    vec![
        ("flows/main.ygtc".into(), MAIN.into()),
        ("flows/shout.ygtc".into(), SHOUT.into()),
        ("components/acme.reader.wasm".into(), read("asset-reader")),
        ("components/acme.reader.manifest.json".into(), manifest),
        ("components/acme.upper.wasm".into(), read("legacy-v04")),
        ("components/echo.wasm".into(), read("legacy-v05")),
        (
            "assets/greeting.txt".into(),
            b"hello from the pack".to_vec(),
        ),
    ]
}

pub fn expected_main() -> Value {
    json!({"greeting": "HELLO FROM THE PACK", "shout": "HELLO FROM THE PACK", "abi": "legacy-v05"})
}

fn write_dir(root: &Path, files: &[(String, Vec<u8>)]) {
    for (path, data) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// A compiled flow for manifest.cbor, in greentic-types' serde form.
fn compiled(id: &str, start: &str, nodes: Value) -> Value {
    json!({"schema_version": "flow-v1", "id": id, "kind": "messaging",
           "entrypoints": {"default": start}, "nodes": nodes})
}

fn node(
    id: &str,
    component: &str,
    operation: Option<&str>,
    mapping: Value,
    routing: Value,
) -> Value {
    let mut component = json!({"id": component});
    if let Some(op) = operation {
        component["operation"] = json!(op);
    }
    json!({"id": id, "component": component, "input": {"mapping": mapping},
           "output": {"mapping": {}}, "routing": routing})
}

/// `manifest.cbor` as packc writes it: packc's compiled form of MAIN and SHOUT.
pub fn manifest_cbor() -> Vec<u8> {
    let main = compiled(
        "main",
        "read",
        json!({
            "read": node("read", "acme.reader", None, json!({"input": {"path": "greeting.txt"}, "component": "acme.reader"}), json!({"next": {"node_id": "call"}})),
            "call": node("call", "flow.call", None, json!({"flow": "shout", "input": {"text": "{{node.read.text}}"}}), json!({"next": {"node_id": "done"}})),
            "done": node("done", "echo", Some("upper"), json!({"greeting": "{{node.read.text}}", "shout": "{{node.call.text}}"}), "end".into()),
        }),
    );
    let shout = compiled(
        "shout",
        "up",
        json!({"up": node("up", "acme.upper", Some("upper"), json!({"text": "{{in.text}}"}), "end".into())}),
    );
    let manifest = json!({
        "schema_version": "pack-v1", "pack_id": "dev.tests.greeter", "version": "0.1.0",
        "kind": "application", "publisher": "tests", "components": [],
        "flows": [
            {"id": "main", "kind": "messaging", "flow": main, "tags": [], "entrypoints": ["default"]},
            {"id": "shout", "kind": "messaging", "flow": shout, "tags": [], "entrypoints": []},
        ],
    });
    let manifest: greentic_types::PackManifest = serde_json::from_value(manifest).unwrap();
    greentic_types::encode_pack_manifest(&manifest).unwrap()
}

/// A `.gtpack`: `files` (flows at packc's `flows/<id>/flow.ygtc` when
/// `with_yaml`), manifest.cbor, and an sbom.json of their BLAKE3 hashes.
fn gtpack(path: &Path, with_yaml: bool, tamper: impl Fn(&mut Vec<(String, Vec<u8>)>)) {
    let mut files = gtpack_entries(with_yaml);
    files.push(("manifest.cbor".into(), manifest_cbor()));
    write_gtpack(path, files, tamper);
}

/// The entries of the test `.gtpack` but `manifest.cbor` and `sbom.json`.
pub fn gtpack_entries(with_yaml: bool) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, data) in pack_files() {
        if let Some(flow) = name.strip_prefix("flows/") {
            if with_yaml {
                let id = flow.strip_suffix(".ygtc").unwrap();
                files.push((format!("flows/{id}/flow.ygtc"), data));
            }
        } else if let Some(stem) = name.strip_suffix(".manifest.json") {
            // packc stores component manifests as CBOR.
            let doc: Value = serde_json::from_slice(&data).unwrap();
            let mut cbor = Vec::new();
            ciborium::into_writer(&doc, &mut cbor).unwrap();
            files.push((format!("{stem}.manifest.cbor"), cbor));
        } else {
            files.push((name, data));
        }
    }
    files
}

/// Writes a `.gtpack` of `files` (which hold `manifest.cbor`) with the
/// `sbom.json` of their BLAKE3 hashes; `tamper` edits the list last.
pub fn write_gtpack(
    path: &Path,
    mut files: Vec<(String, Vec<u8>)>,
    tamper: impl Fn(&mut Vec<(String, Vec<u8>)>),
) {
    let sbom: Vec<Value> = files
        .iter()
        .map(|(p, d)| json!({"path": p, "size": d.len(), "hash_blake3": blake3::hash(d).to_hex().to_string()}))
        .collect();
    files.push((
        "sbom.json".into(),
        json!({"format": "greentic-sbom-v1", "files": sbom})
            .to_string()
            .into_bytes(),
    ));
    tamper(&mut files);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in files {
        zip.start_file(name, options).unwrap();
        zip.write_all(&data).unwrap();
    }
    zip.finish().unwrap();
}

fn run(target: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", target, "-q"];
    args.extend_from_slice(extra);
    host_shim(&args)
}

#[test]
fn a_pack_directory_runs_its_entry_flow_or_the_named_one() {
    let root = scratch("pack-dir");
    write_dir(&root, &pack_files());
    std::fs::write(root.join("pack.yaml"), PACK_YAML).unwrap();
    let out = run(root.to_str().unwrap(), &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.json(),
        expected_main(),
        "flow.call, pack components first, assets"
    );
    let shout = run(
        &format!("{}#shout", root.display()),
        &["--input", r#"{"text": "hi"}"#],
    );
    assert_eq!(
        shout.json(),
        json!({"text": "HI", "abi": "legacy-v04"}),
        "{shout}"
    );
    let missing = run(&format!("{}#nope", root.display()), &[]);
    expect_failure(&missing, 2, "no flow `nope` (flows: main, shout)");
    // `check` checks every flow of the pack.
    let check = host_shim(&["check", root.to_str().unwrap(), "-q"]);
    assert_eq!(check.code, 0, "{check}");
    assert!(check.stdout.contains("2 flows: 2 ok, 0 failed"), "{check}");
}

#[test]
fn a_gtpack_runs_from_its_flows_or_from_the_compiled_manifest() {
    let dir = scratch("pack-archive");
    for (name, with_yaml) in [("dev.gtpack", true), ("release.gtpack", false)] {
        let pack = dir.join(name);
        gtpack(&pack, with_yaml, |_| {});
        let out = run(pack.to_str().unwrap(), &[]);
        assert_eq!(out.code, 0, "{name}: {out}");
        assert_eq!(out.json(), expected_main(), "{name}");
        let shout = run(
            &format!("{}#shout", pack.display()),
            &["--input", r#"{"text": "hey"}"#],
        );
        assert_eq!(shout.json()["text"], "HEY", "{name}: {shout}");
        let check = host_shim(&["check", pack.to_str().unwrap(), "-q"]);
        assert!(
            check.stdout.contains("2 flows: 2 ok, 0 failed"),
            "{name}: {check}"
        );
    }
    // One flow of a pack composes into a component; it runs from the pack too.
    let pack = dir.join("dev.gtpack");
    let app = dir.join("shout.wasm");
    let target = format!("{}#shout", pack.display());
    let out = host_shim(&["compose", &target, "-o", app.to_str().unwrap(), "-q"]);
    assert_eq!(out.code, 0, "{out}");
    let composed = run(
        &target,
        &[
            "--composed",
            app.to_str().unwrap(),
            "--input",
            r#"{"text": "yo"}"#,
        ],
    );
    assert_eq!(composed.json()["text"], "YO", "{composed}");
}

#[test]
fn an_altered_or_unsafe_pack_is_refused_naming_the_entry() {
    let dir = scratch("pack-bad");
    let altered = dir.join("altered.gtpack");
    gtpack(&altered, true, |files| {
        let asset = files
            .iter_mut()
            .find(|(n, _)| n == "assets/greeting.txt")
            .unwrap();
        asset.1 = b"hello from mallory".to_vec();
    });
    let out = run(altered.to_str().unwrap(), &[]);
    expect_failure(&out, 2, "altered.gtpack#assets/greeting.txt");
    assert!(out.stderr.contains("does not match sbom.json"), "{out}");

    let escaping = dir.join("escaping.gtpack");
    gtpack(&escaping, true, |files| {
        files.push(("../evil.txt".into(), b"x".to_vec()))
    });
    let out = run(escaping.to_str().unwrap(), &[]);
    expect_failure(&out, 2, "escaping.gtpack#../evil.txt");
    assert!(out.stderr.contains("leaves the pack"), "{out}");
    assert!(!dir.join("evil.txt").exists());

    let no_manifest = dir.join("empty.gtpack");
    gtpack(&no_manifest, true, |files| {
        files.retain(|(n, _)| n != "manifest.cbor" && n != "sbom.json")
    });
    expect_failure(
        &run(no_manifest.to_str().unwrap(), &[]),
        2,
        "no `manifest.cbor`",
    );

    let not_zip = dir.join("text.gtpack");
    std::fs::write(&not_zip, "not a zip").unwrap();
    expect_failure(
        &run(not_zip.to_str().unwrap(), &[]),
        2,
        "not a pack archive",
    );
}

#[test]
fn compile_fills_the_cache_with_a_packs_components() {
    let dir = scratch("pack-compile");
    let pack = dir.join("release.gtpack");
    gtpack(&pack, false, |_| {});
    let cache = dir.join("cache");
    let out = host_shim_with_cache(&["compile", pack.to_str().unwrap()], &cache);
    assert_eq!(out.code, 0, "{out}");
    // The runner (the build's) and the pack's three components, both flows'.
    assert!(
        out.stderr
            .contains("4 components: 3 compiled, 1 already compiled"),
        "{out}"
    );
    let run = host_shim_with_cache(&["run", pack.to_str().unwrap()], &cache);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json(), expected_main());
    assert!(!run.stderr.contains("compil"), "{run}");
}

/// A small archive that unpacks to much (here 512 MiB of zeros in ~0.5 MB)
/// and is not a pack: refused for its missing `manifest.cbor` before any
/// entry is read, the process staying small (on main it held every entry in
/// memory first). Peak RSS is the child's own, from getrusage in a Python
/// parent that runs only it.
#[test]
fn a_zip_bomb_without_a_manifest_is_refused_before_it_is_read() {
    let dir = scratch("pack-bomb");
    let bomb = dir.join("bomb.gtpack");
    let cache = dir.join("cache");
    let script = r#"
import resource, subprocess, sys, zipfile
bomb, exe, cache = sys.argv[1:4]
with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
    with z.open("assets/zeros.bin", "w", force_zip64=True) as f:
        chunk = bytes(1 << 20)
        for _ in range(512):
            f.write(chunk)
run = subprocess.run([exe, "run", bomb, "-q"], capture_output=True, text=True,
                     env={"GREENTIC_CACHE_DIR": cache, "PATH": "/usr/bin:/bin"})
print(run.returncode)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(run.stderr)
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            bomb.to_str().unwrap(),
            env!("CARGO_BIN_EXE_host-shim"),
            cache.to_str().unwrap(),
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let code: i32 = lines.next().unwrap().parse().unwrap();
    let peak_kib: u64 = lines.next().unwrap().parse().unwrap();
    let stderr: String = lines.collect::<Vec<_>>().join("\n");
    assert!(std::fs::metadata(&bomb).unwrap().len() < 4 << 20);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no `manifest.cbor`: not a greentic pack"),
        "{stderr}"
    );
    eprintln!(
        "refused a 512 MiB bomb at a peak RSS of {} MiB",
        peak_kib >> 10
    );
    assert!(peak_kib < 128 << 10, "peak RSS {peak_kib} KiB: {stderr}");
}

/// The archive limits, checked from its directory before anything is
/// unpacked: more than 10,000 entries, or entries declaring more than 1 GiB
/// together (two of 600 MiB of zeros, deflated to a few MiB), each refused
/// naming the limit — though both archives have a manifest.
#[test]
fn archives_over_the_entry_or_size_limit_are_refused() {
    let dir = scratch("pack-limits");
    let script = r#"
import sys, zipfile
many, big = sys.argv[1:3]
with zipfile.ZipFile(many, "w") as z:
    z.writestr("manifest.cbor", b"")
    for i in range(10000):
        z.writestr(f"assets/{i}.txt", b"")
with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("manifest.cbor", b"")
    chunk = bytes(1 << 20)
    for name in ("assets/a.bin", "assets/b.bin"):
        with z.open(name, "w", force_zip64=True) as f:
            for _ in range(600):
                f.write(chunk)
"#;
    let (many, big) = (dir.join("many.gtpack"), dir.join("big.gtpack"));
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .args([&many, &big])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&big).unwrap().len() < 8 << 20);

    let out = run(many.to_str().unwrap(), &[]);
    expect_failure(&out, 2, "10001 entries, more than 10000");
    let out = run(big.to_str().unwrap(), &[]);
    expect_failure(&out, 2, "big.gtpack#assets/b.bin");
    assert!(
        out.stderr
            .contains("the pack unpacks to more than 1073741824 bytes"),
        "{out}"
    );
}

/// Whoever can write the cache could inject code: an unpacked pack or a
/// compiled artifact someone else could have written is not used.
#[test]
fn cache_entries_others_could_write_are_not_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("pack-cache-perms");
    let cache = dir.join("cache");
    let pack = dir.join("dev.gtpack");
    gtpack(&pack, true, |_| {});
    let target = pack.to_str().unwrap();
    let filled = host_shim_with_cache(&["compile", target, "-q"], &cache);
    assert_eq!(filled.code, 0, "{filled}");
    let first = host_shim_with_cache(&["run", target, "-q"], &cache);
    assert_eq!(first.json(), expected_main(), "{first}");
    // A compiled artifact made world-writable is compiled again, not loaded.
    let artifacts: Vec<_> = walk(&cache)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert!(!artifacts.is_empty(), "compile wrote no artifact");
    for artifact in &artifacts {
        std::fs::set_permissions(artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let out = host_shim_with_cache(&["run", target], &cache);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("not loading a cached artifact")
            && out.stderr.contains("writable by group or others"),
        "{out}"
    );
    // An unpacked pack whose component others could rewrite is refused.
    let component = walk(&cache.join("packs"))
        .into_iter()
        .find(|p| p.ends_with("components/acme.reader.wasm"))
        .expect("the unpacked component");
    std::fs::set_permissions(&component, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = host_shim_with_cache(&["run", target, "-q"], &cache);
    expect_failure(
        &out,
        2,
        "is writable by group or others (mode 666): refusing to use it",
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
