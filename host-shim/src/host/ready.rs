//! Flows made ready once per version of their files.
//!
//! Making a flow ready — reading it and the flows it calls, planning them in
//! the runner, finding the pack they sit in, resolving, linking and gating
//! their components — costs far more than running a short flow. A host keeps
//! what it made per flow file and makes it again only when one of the files
//! it read changes (length, modification time or inode): a served flow that
//! is edited is served as edited, and an unchanged one costs a few `stat`s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::outcome::CheckReport;
use crate::nodes::NodeComponent;
use crate::runner::{FlowSource, SlotBinding};

/// Ready flows a host keeps at most; past it the cache starts over (a host
/// serves a catalog's flows, so this is only reached by odd use).
const READY_FLOWS: usize = 256;

/// A flow set ready to run: what the runner is sent and the components its
/// slots hold, with what was found while making it.
pub(super) struct ReadyFlow {
    /// The files it was made from, as they were.
    pub(super) files: FileStamps,
    /// The flow, as the runner reads it.
    pub(super) flow: FlowSource,
    /// The flows it calls, sorted by id.
    pub(super) library: Vec<FlowSource>,
    /// Which slot holds which component reference.
    pub(super) bindings: Vec<SlotBinding>,
    /// The linked component of each slot, in slot order.
    pub(super) components: Vec<NodeComponent>,
    /// Some flow of the set uses `state.get`/`state.set` (and the profile
    /// allows every such flow).
    pub(super) uses_flow_state: bool,
    /// The flows' `assets/` directory.
    pub(super) assets: Option<PathBuf>,
    /// What a check reports about it.
    pub(super) report: CheckReport,
}

/// The ready flows of a host, by the main flow's path.
#[derive(Default)]
pub(super) struct ReadyFlows(HashMap<PathBuf, Arc<ReadyFlow>>);

impl ReadyFlows {
    /// The ready flow for `path`, if its files have not changed since.
    pub(super) fn current(&self, path: &Path) -> Option<Arc<ReadyFlow>> {
        self.0
            .get(path)
            .filter(|ready| ready.files.unchanged())
            .cloned()
    }

    pub(super) fn keep(&mut self, path: &Path, ready: Arc<ReadyFlow>) {
        if self.0.len() >= READY_FLOWS && !self.0.contains_key(path) {
            self.0.clear();
        }
        self.0.insert(path.to_path_buf(), ready);
    }
}

/// A file as it was: absent, or its length, modification time and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp(Option<(u64, Option<SystemTime>, u64)>);

impl Stamp {
    /// `path` now.
    pub(super) fn of(path: &Path) -> Stamp {
        Stamp(std::fs::metadata(path).ok().map(|m| {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0;
            (m.len(), m.modified().ok(), inode)
        }))
    }
}

/// Files and how they were when read.
#[derive(Debug, Default)]
pub(super) struct FileStamps(Vec<(PathBuf, Stamp)>);

impl FileStamps {
    /// Records `path` as it is now.
    pub(super) fn add(&mut self, path: &Path) {
        if !self.0.iter().any(|(p, _)| p == path) {
            self.0.push((path.to_path_buf(), Stamp::of(path)));
        }
    }

    /// Records `path` as it was when `stamp` was taken.
    pub(super) fn add_stamped(&mut self, path: &Path, stamp: Stamp) {
        if !self.0.iter().any(|(p, _)| p == path) {
            self.0.push((path.to_path_buf(), stamp));
        }
    }

    /// No file changed, appeared or went away since.
    pub(super) fn unchanged(&self) -> bool {
        self.0.iter().all(|(path, stamp)| Stamp::of(path) == *stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_appearing_or_removed_file_is_a_change() {
        let dir = std::env::temp_dir().join(format!("ready-stamps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (flow, sidecar) = (dir.join("f.ygtc"), dir.join("f.ygtc.resolve.json"));
        std::fs::write(&flow, "id: a\n").unwrap();
        let mut files = FileStamps::default();
        files.add(&flow);
        files.add(&sidecar);
        assert!(files.unchanged());
        // Same length, new file (another inode): what an editor's save does.
        let next = dir.join("next");
        std::fs::write(&next, "id: b\n").unwrap();
        std::fs::rename(&next, &flow).unwrap();
        assert!(!files.unchanged());

        let mut files = FileStamps::default();
        files.add(&flow);
        files.add(&sidecar);
        std::fs::write(&sidecar, "{}").unwrap();
        assert!(!files.unchanged(), "a sidecar that appears is a change");

        let mut files = FileStamps::default();
        files.add(&flow);
        std::fs::remove_file(&flow).unwrap();
        assert!(!files.unchanged(), "a removed flow is a change");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
