//! Signed packs: a `.gtpack` whose `manifest.cbor` is signed as `packc sign`
//! signs it (Ed25519 over the manifest encoded by greentic-types with its
//! signature list emptied, the signature appended under a key id — done
//! here with the same published greentic-types and ed25519-dalek calls),
//! run under `--pack-key` / `--verify`.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::{Signer, SigningKey};

use crate::packs::{expected_main, gtpack_entries, manifest_cbor};
use crate::support::*;

/// `manifest` signed by `key` under `key_id`, as `packc sign` does it.
fn sign(manifest: &[u8], key: &SigningKey, key_id: &str) -> Vec<u8> {
    let mut signed = greentic_types::decode_pack_manifest(manifest).unwrap();
    let mut unsigned = signed.clone();
    unsigned.signatures.signatures.clear();
    let bytes = greentic_types::encode_pack_manifest(&unsigned).unwrap();
    signed
        .signatures
        .signatures
        .push(greentic_types::Signature::new(
            key_id.to_string(),
            greentic_types::SignatureAlgorithm::Ed25519,
            key.sign(&bytes).to_bytes().to_vec(),
        ));
    greentic_types::encode_pack_manifest(&signed).unwrap()
}

fn pack_with(dir: &Path, name: &str, manifest: Vec<u8>) -> String {
    let path = dir.join(name);
    let mut files = gtpack_entries(true);
    files.push(("manifest.cbor".into(), manifest));
    crate::packs::write_gtpack(&path, files, |_| {});
    path.display().to_string()
}

fn public_pem(dir: &Path, name: &str, key: &SigningKey) -> PathBuf {
    let path = dir.join(name);
    let pem = key
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    std::fs::write(&path, pem).unwrap();
    path
}

#[test]
fn strict_runs_only_packs_a_trusted_key_signed_as_they_are() {
    let dir = scratch("pack-signatures");
    let ours = SigningKey::from_bytes(&[7u8; 32]);
    let theirs = SigningKey::from_bytes(&[9u8; 32]);
    let key = public_pem(&dir, "ours.pub.pem", &ours);
    let other_key = public_pem(&dir, "theirs.pub.pem", &theirs);
    let key = key.to_str().unwrap();

    let signed = pack_with(
        &dir,
        "signed.gtpack",
        sign(&manifest_cbor(), &ours, "release"),
    );
    let unsigned = pack_with(&dir, "unsigned.gtpack", manifest_cbor());
    let by_other = pack_with(
        &dir,
        "other.gtpack",
        sign(&manifest_cbor(), &theirs, "release"),
    );
    // Changed after signing: the publisher, the signature kept.
    let mut doc: serde_json::Value = serde_json::to_value(
        greentic_types::decode_pack_manifest(&sign(&manifest_cbor(), &ours, "release")).unwrap(),
    )
    .unwrap();
    doc["publisher"] = "mallory".into();
    let altered: greentic_types::PackManifest = serde_json::from_value(doc).unwrap();
    let tampered = pack_with(
        &dir,
        "tampered.gtpack",
        greentic_types::encode_pack_manifest(&altered).unwrap(),
    );

    let out = host_shim(&["run", &signed, "--pack-key", key, "-q"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.json(), expected_main());
    // A key among several trusted ones is enough.
    let both = ["--pack-key", other_key.to_str().unwrap(), "--pack-key", key];
    let mut args = vec!["run", signed.as_str(), "-q"];
    args.extend(both);
    assert_eq!(host_shim(&args).code, 0);

    for (pack, needle) in [
        (&unsigned, "not signed; refused (--verify strict)"),
        (&by_other, "no trusted key verifies it"),
        (&tampered, "no trusted key verifies it"),
    ] {
        for verb in ["run", "check"] {
            let out = host_shim(&[verb, pack, "--pack-key", key, "-q"]);
            expect_failure(&out, 2, needle);
            assert!(out.stderr.contains(pack.as_str()), "names the pack: {out}");
        }
        let out = host_shim(&[
            "serve",
            pack,
            "--pack-key",
            key,
            "--addr",
            "127.0.0.1:0",
            "-q",
        ]);
        expect_failure(&out, 2, needle);
    }
    // A channel provider pack is held to the same policy as the app pack.
    let provider = dir.join("provider.gtpack");
    crate::messaging::telegram_provider_pack(&provider);
    let out = host_shim(&[
        "serve",
        &signed,
        "--channel-pack",
        provider.to_str().unwrap(),
        "--pack-key",
        key,
        "--addr",
        "127.0.0.1:0",
        "-q",
    ]);
    expect_failure(&out, 2, "not signed");
    assert!(
        out.stderr.contains("provider.gtpack"),
        "names the provider pack: {out}"
    );
    // warn: said, and run; off: not looked at.
    let out = host_shim(&["run", &unsigned, "--pack-key", key, "--verify", "warn"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("not signed (--verify warn)"), "{out}");
    let out = host_shim(&["run", &tampered, "--verify", "off", "-q"]);
    assert_eq!(out.code, 0, "{out}");
    // strict with nothing to verify against is a usage error.
    let out = host_shim(&["run", &signed, "--verify", "strict"]);
    expect_failure(&out, 2, "--verify strict needs the public key");
    // A key file that is not a public key is named.
    let not_a_key = dir.join("not-a-key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = host_shim(&["run", &signed, "--pack-key", not_a_key.to_str().unwrap()]);
    expect_failure(&out, 2, "not-a-key.pem: not an Ed25519 public key in PEM");
}

/// `serve app.gtpack` while the file is replaced (as a deploy does: written
/// beside it, renamed over it) under a steady stream of requests: every
/// request is answered, answers switch to each new version in order, and a
/// version no trusted key signed is refused while the last good one serves.
#[test]
fn a_served_gtpack_is_swapped_live_and_an_untrusted_version_refused() {
    let dir = scratch("pack-reload");
    let ours = SigningKey::from_bytes(&[7u8; 32]);
    let key = public_pem(&dir, "ours.pub.pem", &ours);
    let archive = dir.join("app.gtpack");
    let deploy = |greeting: &str, signed: bool| {
        let mut files = gtpack_entries(true);
        for (name, data) in files.iter_mut() {
            if name == "assets/greeting.txt" {
                *data = greeting.as_bytes().to_vec();
            }
        }
        let manifest = if signed {
            sign(&manifest_cbor(), &ours, "release")
        } else {
            manifest_cbor()
        };
        files.push(("manifest.cbor".into(), manifest));
        let staged = dir.join(".app.gtpack.new");
        crate::packs::write_gtpack(&staged, files, |_| {});
        std::fs::rename(&staged, &archive).unwrap();
    };
    deploy("version one", true);
    let server = serve(
        &archive,
        &[
            "--addr",
            "127.0.0.1:0",
            "--pack-key",
            key.to_str().unwrap(),
            "--rescan-interval",
            "100ms",
            "-q",
        ],
    );
    let url = format!("{}/flows/main", server.base);
    let load = GreetingLoad::start(&url);
    wait_for_greeting(&url, "VERSION ONE");
    deploy("version two", true);
    wait_for_greeting(&url, "VERSION TWO");
    deploy("version three", true);
    wait_for_greeting(&url, "VERSION THREE");
    deploy("version four, unsigned", false);
    wait_for_metric(
        &server,
        "greentic_pack_reloads_total{outcome=\"refused\"} 1",
    );
    let versions = load.finish(&["VERSION ONE", "VERSION TWO", "VERSION THREE"]);
    assert_eq!(
        versions.last(),
        Some(&2),
        "the unsigned version never served"
    );
    let metrics = http("GET", &format!("{}/metrics", server.base), "", &[])
        .unwrap()
        .1;
    assert!(
        metrics.contains("greentic_pack_reloads_total{outcome=\"reloaded\"} 2"),
        "{metrics}"
    );
}
