//! Stages the runner's WIT package (`wit/runner.wit`) together with the greentic
//! packages it `use`s, so bindings generators can resolve it from one folder.
//!
//! The greentic packages are taken from the `greentic-interfaces` crate, which
//! ships them under `bundled-wit/`; they are never copied into this repository.
//! The crate is found through `cargo metadata` (it is in the workspace's lock
//! file through host-shim) rather than depended on: it pulls in wasmtime.
#![deny(missing_docs)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The greentic-interfaces release whose WIT the runner uses.
const GREENTIC_INTERFACES: (&str, &str) = ("greentic-interfaces", "1.2.0");

/// The release that still ships the legacy JSON ABIs `greentic:component@0.4.0`
/// and `@0.5.0` (only ever read, never compiled: see Cargo.toml).
const GREENTIC_INTERFACES_LEGACY: (&str, &str) = ("greentic-interfaces", "0.4.113");

/// Greentic packages the runner world depends on, as named in `bundled-wit/`.
const GREENTIC_DEPS: &[&str] = &[
    "greentic-component-0.6.0",
    "greentic-types-core-0.6.0",
    "greentic-state-1.0.0",
    "greentic-interfaces-types-0.1.0",
];

/// Number of node slots the runner world imports (`wit/runner.wit`).
pub const SLOT_COUNT: usize = 64;

/// The name of node slot `index` (0-based): `slot-a` … `slot-z`, `slot-aa` …,
/// bijective base 26, as `wit/runner.wit` spells them.
pub fn slot_name(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    format!("slot-{}", String::from_utf8(letters).expect("ascii"))
}

/// The repository's `wit/` folder (the source of truth for `greentic:runner`).
pub fn runner_wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("wit/stage lives inside wit/")
        .to_path_buf()
}

/// The folder of greentic WIT packages shipped by `greentic-interfaces`.
pub fn greentic_bundled_wit() -> io::Result<PathBuf> {
    bundled_wit_of(GREENTIC_INTERFACES)
}

/// The bundled WIT of the greentic-interfaces release with the legacy ABIs.
pub fn legacy_bundled_wit() -> io::Result<PathBuf> {
    bundled_wit_of(GREENTIC_INTERFACES_LEGACY)
}

fn bundled_wit_of((name, version): (&str, &str)) -> io::Result<PathBuf> {
    let workspace = runner_wit_dir()
        .parent()
        .expect("wit/ has a parent")
        .join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&workspace)
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(io::Error::other)?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name && p["version"] == version)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| {
            io::Error::other(format!(
                "{name} {version} is not in the workspace's dependency graph"
            ))
        })?;
    let bundled = Path::new(manifest).with_file_name("bundled-wit");
    if !bundled.is_dir() {
        return Err(io::Error::other(format!(
            "{name} ships no bundled-wit at {}",
            bundled.display()
        )));
    }
    Ok(bundled)
}

/// Copies `wit/*.wit` into `out/` and the greentic dependencies into `out/deps/`,
/// flattened (one folder per package), and returns `out`.
pub fn stage(out: &Path) -> io::Result<PathBuf> {
    fresh_dir_with_deps(out, GREENTIC_DEPS)?;
    for entry in fs::read_dir(runner_wit_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wit") {
            fs::copy(&path, out.join(path.file_name().unwrap()))?;
        }
    }
    Ok(out.to_path_buf())
}

/// Stages a WIT document of ours (`wit_text`, written as `out/world.wit`) with
/// the given greentic packages (names as in `bundled-wit/`, e.g.
/// `greentic-state-1.1.0`) in `out/deps/`, and returns `out`.
pub fn stage_world(out: &Path, wit_text: &str, packages: &[&str]) -> io::Result<PathBuf> {
    fresh_dir_with_deps(out, packages)?;
    fs::write(out.join("world.wit"), wit_text)?;
    Ok(out.to_path_buf())
}

/// Adds `greentic:runner`'s `run-scope.wit` (alone: it uses nothing) to a
/// staged folder's `deps/`, for parts that import the run's scope.
pub fn stage_run_scope(out: &Path) -> io::Result<()> {
    let dest = out.join("deps").join("greentic-runner-scope");
    fs::create_dir_all(&dest)?;
    fs::copy(
        runner_wit_dir().join("run-scope.wit"),
        dest.join("run-scope.wit"),
    )?;
    Ok(())
}

/// Adds `greentic:runner`'s `baked-flows.wit` (alone: it uses nothing) to a
/// staged folder's `deps/`, for parts that read the composition's baked document.
pub fn stage_baked_flows(out: &Path) -> io::Result<()> {
    let dest = out.join("deps").join("greentic-runner-baked");
    fs::create_dir_all(&dest)?;
    fs::copy(
        runner_wit_dir().join("baked-flows.wit"),
        dest.join("baked-flows.wit"),
    )?;
    Ok(())
}

/// Empties `out` and copies the named packages of greentic-interfaces'
/// `bundled-wit/` into `out/deps/`.
fn fresh_dir_with_deps(out: &Path, packages: &[&str]) -> io::Result<()> {
    if out.exists() {
        fs::remove_dir_all(out)?;
    }
    let deps = out.join("deps");
    fs::create_dir_all(&deps)?;
    let bundled = greentic_bundled_wit()?;
    for name in packages {
        let dest = deps.join(name);
        fs::create_dir_all(&dest)?;
        fs::copy(
            bundled.join(name).join("package.wit"),
            dest.join("package.wit"),
        )?;
    }
    Ok(())
}

/// Copies one package folder of a `bundled-wit/` (its `package.wit` and its
/// `deps/`) to `out`, flattened for wit-parser: `out/package.wit`, `out/deps/<dep>/`.
pub fn stage_package(bundled: &Path, package: &str, out: &Path) -> io::Result<PathBuf> {
    if out.exists() {
        fs::remove_dir_all(out)?;
    }
    fs::create_dir_all(out.join("deps"))?;
    let source = bundled.join(package);
    fs::copy(source.join("package.wit"), out.join("package.wit"))?;
    if let Ok(deps) = fs::read_dir(source.join("deps")) {
        for dep in deps {
            let dep = dep?.path();
            let dest = out.join("deps").join(dep.file_name().unwrap());
            fs::create_dir_all(&dest)?;
            fs::copy(dep.join("package.wit"), dest.join("package.wit"))?;
        }
    }
    Ok(out.to_path_buf())
}

/// Like [`stage_package`], in the record shape older guest crates built the
/// legacy ABIs with (greentic-interfaces-guest 0.4.78, before `i18n-id` was
/// added to `tenant-ctx` and `exec-ctx`): the same WIT with the `i18n-id`
/// fields dropped. Both shapes exist in the wild under the same version.
pub fn stage_package_pre_i18n(bundled: &Path, package: &str, out: &Path) -> io::Result<PathBuf> {
    stage_package(bundled, package, out)?;
    drop_i18n_fields(&out.join("package.wit"))?;
    Ok(out.to_path_buf())
}

/// Removes the `i18n-id` record fields from a staged WIT file.
fn drop_i18n_fields(file: &Path) -> io::Result<()> {
    let text = fs::read_to_string(file)?;
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("i18n-id:"))
        .collect();
    fs::write(file, kept.join("\n") + "\n")
}

/// `greentic:component/component-runtime@0.6.0`, the ABI of components that
/// export only `run(input, state)` (CBOR in and out). No greentic crate ships
/// its WIT — greentic's tooling writes it inline — so it is declared here from
/// the ABI's description, once, for every build that binds it.
pub const COMPONENT_RUNTIME_INTERFACE: &str = "
/// A node that keeps its state in its caller: `state` is what the previous
/// call returned as `new-state` (empty on the first call).
interface component-runtime {
  record run-result { output: list<u8>, new-state: list<u8> }
  run: func(input: list<u8>, state: list<u8>) -> run-result;
}
";

/// The node ABI an adapter part turns into `greentic:component/node@0.6.0`.
#[derive(Debug, Clone, Copy)]
pub enum AdaptedAbi {
    /// `greentic:component/component-runtime@0.6.0`.
    Runtime,
    /// A legacy JSON ABI: its package in greentic-interfaces 0.4's
    /// `bundled-wit/` (e.g. `greentic-component-0.4.0`), and whether in the
    /// record shape without `i18n-id`.
    Legacy {
        /// The package folder name.
        package: &'static str,
        /// The older record shape, without `i18n-id`.
        pre_i18n: bool,
    },
}

/// Stages the world of an adapter part (`wit_text`, written as
/// `out/world.wit`): `greentic:component@0.6.0` with what `abi` needs — the
/// component-runtime interface added to it, or the legacy package (in the
/// requested record shape) beside it.
pub fn stage_adapter(out: &Path, wit_text: &str, abi: AdaptedAbi) -> io::Result<PathBuf> {
    stage_world(
        out,
        wit_text,
        &["greentic-component-0.6.0", "greentic-types-core-0.6.0"],
    )?;
    match abi {
        AdaptedAbi::Runtime => {
            let file = out.join("deps/greentic-component-0.6.0/package.wit");
            let mut text = fs::read_to_string(&file)?;
            text.push_str(COMPONENT_RUNTIME_INTERFACE);
            fs::write(&file, text)?;
        }
        AdaptedAbi::Legacy { package, pre_i18n } => {
            let staged = out.join("legacy");
            stage_package(&legacy_bundled_wit()?, package, &staged)?;
            if pre_i18n {
                drop_i18n_fields(&staged.join("package.wit"))?;
            }
            // Flatten: the legacy package and its own deps beside the others.
            let dest = out.join("deps").join(package);
            fs::create_dir_all(&dest)?;
            fs::rename(staged.join("package.wit"), dest.join("package.wit"))?;
            for dep in fs::read_dir(staged.join("deps"))? {
                let dep = dep?.path();
                fs::rename(&dep, out.join("deps").join(dep.file_name().unwrap()))?;
            }
            fs::remove_dir_all(&staged)?;
        }
    }
    Ok(out.to_path_buf())
}

/// Files whose change must re-run a build script that staged the WIT.
pub fn watched_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["runner.wit", "baked-flows.wit", "app.wit", "run-scope.wit"]
        .iter()
        .map(|f| runner_wit_dir().join(f))
        .collect();
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_match_the_runner_world() {
        assert_eq!(slot_name(0), "slot-a");
        assert_eq!(slot_name(25), "slot-z");
        assert_eq!(slot_name(26), "slot-aa");
        let wit = fs::read_to_string(runner_wit_dir().join("runner.wit")).unwrap();
        for i in 0..SLOT_COUNT {
            let import = format!("  import {};\n", slot_name(i));
            assert!(wit.contains(&import), "runner.wit lacks `{import}`");
        }
        let extra = format!("  import {};\n", slot_name(SLOT_COUNT));
        assert!(
            !wit.contains(&extra),
            "runner.wit has more than {SLOT_COUNT} slots"
        );
    }
}
