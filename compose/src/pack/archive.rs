//! `.gtpack` archives: unpacked once, streamed to disk under limits, every
//! file checked against the archive's `sbom.json`, into a pack directory.

use super::compiled::ygtc_from_compiled;
use super::error::{PackError, err};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest total size of an archive's unpacked entries.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// Largest `manifest.cbor`, `sbom.json`, flow or component manifest read
/// into memory (everything else is streamed to disk).
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

/// Unpacks `archive` into `<cache>/packs/<sha256 prefix>/` (once; a finished
/// directory is reused if it is this user's and no one else may write it)
/// and returns that directory. Entries are streamed to disk: memory stays
/// small whatever the archive unpacks to, and every limit is checked from
/// the archive's directory before any entry is read.
pub fn unpack(archive: &Path, cache: &Path) -> Result<PathBuf, PackError> {
    let digest = {
        let mut file =
            std::fs::File::open(archive).map_err(|e| err(archive, format!("cannot read: {e}")))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)
            .map_err(|e| err(archive, format!("cannot read: {e}")))?;
        format!("{:x}", hasher.finalize())
    };
    let packs = cache.join("packs");
    crate::private_dir::create(&packs).map_err(|e| err(&packs, e.to_string()))?;
    // The layout version is in the name: a pack unpacked by an older runner
    // (without what this one reads) is unpacked again, not misread.
    let root = packs.join(format!("{}.{LAYOUT}", &digest[..32]));
    if root.join("pack.yaml").is_file() {
        crate::private_dir::check_one(&packs)
            .and_then(|()| crate::private_dir::check(&root))
            .map_err(|e| err(archive, e.to_string()))?;
        return Ok(root);
    }
    // Unpack beside it and rename: a concurrent or interrupted unpack never
    // leaves a half-written pack where a finished one is looked for.
    let staging = packs.join(format!(".{}-{}", &digest[..32], std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = unpack_into(archive, &staging)
        .and_then(|()| {
            crate::private_dir::seal(&staging)
                .map_err(|e| err(&staging, format!("cannot seal: {e}")))
        })
        .and_then(|()| {
            match std::fs::rename(&staging, &root) {
                Ok(()) => Ok(()),
                // Another process finished first: theirs is as good.
                Err(_) if root.join("pack.yaml").is_file() => Ok(()),
                Err(e) => Err(err(
                    archive,
                    format!("cannot unpack into `{}`: {e}", root.display()),
                )),
            }
        });
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| root)
}

/// The unpacked layout's version (2: `pack.yaml` lists `providers`; 3: the
/// signed `manifest.cbor` is kept, for signature checks).
const LAYOUT: u32 = 3;

/// Where the entries are streamed before they are laid out.
const RAW: &str = ".entries";

fn unpack_into(archive: &Path, dest: &Path) -> Result<(), PackError> {
    let entry_err = |name: &str, message: String| PackError {
        pack: format!("{}#{name}", archive.display()),
        message,
    };
    let file =
        std::fs::File::open(archive).map_err(|e| err(archive, format!("cannot read: {e}")))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| err(archive, format!("not a pack archive (zip): {e}")))?;
    if zip.len() > MAX_ENTRIES {
        return Err(err(
            archive,
            format!("{} entries, more than {MAX_ENTRIES}", zip.len()),
        ));
    }
    // The archive's directory first: names and declared sizes, nothing read yet.
    let mut names = Vec::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| err(archive, format!("entry {i}: {e}")))?;
        let name = entry.name().to_string();
        if entry.is_dir() {
            continue;
        }
        if entry.enclosed_name().is_none()
            || name.contains('\\')
            || name
                .split('/')
                .any(|s| s == ".." || s.is_empty() || s == RAW)
        {
            return Err(entry_err(&name, "the entry's path leaves the pack".into()));
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNPACKED_BYTES {
            return Err(entry_err(
                &name,
                format!("the pack unpacks to more than {MAX_UNPACKED_BYTES} bytes"),
            ));
        }
        names.push((i, name));
    }
    if zip.index_for_name("manifest.cbor").is_none() {
        return Err(err(archive, "no `manifest.cbor`: not a greentic pack"));
    }
    crate::private_dir::create(dest).map_err(|e| err(dest, e.to_string()))?;
    // Every entry streamed to disk, its BLAKE3 taken on the way.
    let raw = dest.join(RAW);
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    for (i, name) in &names {
        let mut entry = zip
            .by_index(*i)
            .map_err(|e| entry_err(name, format!("cannot read: {e}")))?;
        let declared = entry.size();
        let path = raw.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(parent, format!("cannot create: {e}")))?;
        }
        let out =
            std::fs::File::create(&path).map_err(|e| err(&path, format!("cannot write: {e}")))?;
        let mut sink = HashingWriter {
            out: std::io::BufWriter::new(out),
            hasher: blake3::Hasher::new(),
        };
        // The declared size may lie: read at most one byte more than it.
        let copied = std::io::copy(&mut entry.by_ref().take(declared + 1), &mut sink)
            .map_err(|e| entry_err(name, format!("cannot read: {e}")))?;
        std::io::Write::flush(&mut sink.out)
            .map_err(|e| err(&path, format!("cannot write: {e}")))?;
        if copied != declared {
            return Err(entry_err(
                name,
                "its size does not match the archive's directory".into(),
            ));
        }
        hashes.insert(name.clone(), sink.hasher.finalize().to_hex().to_string());
    }
    let read_small = |name: &str| -> Result<Vec<u8>, PackError> {
        let path = raw.join(name);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > MAX_METADATA_BYTES {
            return Err(entry_err(
                name,
                format!("{len} bytes, more than the {MAX_METADATA_BYTES} read for it"),
            ));
        }
        std::fs::read(&path).map_err(|e| entry_err(name, format!("cannot read: {e}")))
    };
    if hashes.contains_key("sbom.json") {
        verify_sbom(&read_small("sbom.json")?, &hashes, &entry_err)?;
    }
    let manifest_bytes = read_small("manifest.cbor")?;
    let manifest = greentic_types::decode_pack_manifest(&manifest_bytes)
        .map_err(|e| entry_err("manifest.cbor", format!("cannot decode: {e}")))?;

    let write = |rel: &str, data: &[u8]| -> Result<(), PackError> {
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(&path, format!("cannot create: {e}")))?;
        }
        std::fs::write(&path, data).map_err(|e| err(&path, format!("cannot write: {e}")))
    };
    // Kept as signed: its signature is checked whenever the pack is opened.
    write(super::SIGNED_MANIFEST, &manifest_bytes)?;
    // Large files are moved into place, not read.
    let place = |name: &str| -> Result<(), PackError> {
        let path = dest.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(&path, format!("cannot create: {e}")))?;
        }
        std::fs::rename(raw.join(name), &path).map_err(|e| err(&path, format!("cannot write: {e}")))
    };
    let mut flows = Vec::new();
    for entry in &manifest.flows {
        let id = entry.id.to_string();
        let rel = format!("flows/{id}/flow.ygtc");
        if hashes.contains_key(&rel) {
            write(&rel, &read_small(&rel)?)?;
            for sidecar in [".resolve.json", ".resolve.summary.json"] {
                let name = format!("{rel}{sidecar}");
                if hashes.contains_key(&name) {
                    write(&name, &read_small(&name)?)?;
                }
            }
        } else {
            write(&rel, ygtc_from_compiled(&entry.flow).as_bytes())?;
        }
        flows.push(json!({"id": id, "file": rel, "entrypoints": entry.entrypoints}));
    }
    let mut components = Vec::new();
    for name in hashes.keys() {
        if name.starts_with("assets/") {
            place(name)?;
        } else if let Some(file) = name.strip_prefix("components/") {
            if let Some(stem) = file.strip_suffix(".manifest.cbor") {
                let doc = runner_core::cbor_to_json(&read_small(name)?)
                    .map_err(|e| entry_err(name, format!("not a component manifest: {e}")))?;
                write(
                    &format!("components/{stem}.manifest.json"),
                    doc.to_string().as_bytes(),
                )?;
            } else {
                place(name)?;
                if let Some(id) = file.strip_suffix(".wasm").filter(|id| !id.contains('/')) {
                    components.push(json!({"id": id, "wasm": name}));
                }
            }
        }
    }
    std::fs::remove_dir_all(&raw).map_err(|e| err(&raw, format!("cannot remove: {e}")))?;
    // The provider extension's declarations: which component is which provider.
    let providers: Vec<_> = manifest
        .provider_extension_inline()
        .map(|inline| {
            inline
                .providers
                .iter()
                .map(|p| json!({"provider_type": p.provider_type, "component": p.runtime.component_ref}))
                .collect()
        })
        .unwrap_or_default();
    let pack_yaml = json!({
        "pack_id": manifest.pack_id.to_string(),
        "version": manifest.version.to_string(),
        "flows": flows,
        "components": components,
        "providers": providers,
    });
    let text = serde_yaml::to_string(&pack_yaml).expect("JSON values serialise as YAML");
    write(
        "pack.yaml",
        format!(
            "# Unpacked from {} by the greentic runner.\n{text}",
            archive.display()
        )
        .as_bytes(),
    )
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    out: W,
    hasher: blake3::Hasher,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Checks every file `sbom.json` lists against the BLAKE3 `hashes` of the
/// archive's entries.
fn verify_sbom(
    sbom: &[u8],
    hashes: &BTreeMap<String, String>,
    entry_err: &dyn Fn(&str, String) -> PackError,
) -> Result<(), PackError> {
    let doc: Value = serde_json::from_slice(sbom)
        .map_err(|e| entry_err("sbom.json", format!("not JSON: {e}")))?;
    for item in doc["files"].as_array().into_iter().flatten() {
        let (Some(path), Some(expected)) = (item["path"].as_str(), item["hash_blake3"].as_str())
        else {
            continue;
        };
        let Some(actual) = hashes.get(path) else {
            return Err(entry_err(
                path,
                "listed in sbom.json but missing from the archive".into(),
            ));
        };
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(entry_err(
                path,
                format!(
                    "BLAKE3 {actual} does not match sbom.json's {expected}: the pack was altered"
                ),
            ));
        }
    }
    Ok(())
}
