//! Which binary holds each component state id. A component's state
//! namespace is the `id` its manifest claims, and a manifest is a file
//! anyone can write: so the first binary to use an id's state binds the id
//! to its bytes (SHA-256) for as long as the host lives (a server: all its
//! hosts), and another binary claiming the id is refused before it runs.
//! What the operator pins (the profile's `state.pins`, a resolve summary's
//! digest) is checked first by [`compose::policy::bind_state_id`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A second binary claiming a state id another binary holds.
#[derive(Debug, thiserror::Error)]
#[error(
    "state id `{id}` is held in this host by `{}` ({held}); `{}` ({claimed}) claims it too — pin the id to one binary with the profile's `state.pins`",
    holder.display(),
    claimant.display()
)]
pub struct StateIdTaken {
    /// The id.
    pub id: String,
    /// The binary holding it.
    pub holder: PathBuf,
    /// Its digest.
    pub held: String,
    /// The binary refused.
    pub claimant: PathBuf,
    /// Its digest.
    pub claimed: String,
}

/// State id -> the binary (digest, file) that holds it.
#[derive(Debug, Default)]
pub struct StateBindings {
    held: Mutex<HashMap<String, (String, PathBuf)>>,
}

impl StateBindings {
    /// Binds `id` to the binary `digest` at `path`, or checks that it is
    /// bound to that binary already.
    pub fn claim(&self, id: &str, digest: &str, path: &Path) -> Result<(), StateIdTaken> {
        let mut held = self.held.lock().expect("state bindings");
        match held.get(id) {
            Some((d, _)) if d == digest => Ok(()),
            Some((d, holder)) => Err(StateIdTaken {
                id: id.to_string(),
                holder: holder.clone(),
                held: d.clone(),
                claimant: path.to_path_buf(),
                claimed: digest.to_string(),
            }),
            None => {
                held.insert(id.to_string(), (digest.to_string(), path.to_path_buf()));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_stays_with_the_binary_that_claimed_it_first() {
        let bindings = StateBindings::default();
        bindings
            .claim("counter", "sha256:aa", Path::new("a.wasm"))
            .unwrap();
        bindings
            .claim("counter", "sha256:aa", Path::new("copy.wasm"))
            .unwrap();
        let taken = bindings
            .claim("counter", "sha256:bb", Path::new("evil.wasm"))
            .unwrap_err();
        assert!(
            taken.to_string().contains("`a.wasm` (sha256:aa)"),
            "{taken}"
        );
        bindings
            .claim("other", "sha256:bb", Path::new("evil.wasm"))
            .unwrap();
    }
}
