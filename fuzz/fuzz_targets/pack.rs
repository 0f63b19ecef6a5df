//! The `.gtpack` reader: arbitrary archives never panic, never write outside
//! the cache directory, and a pack that unpacks opens (or is refused) cleanly.
//! The cache sits twelve directories deep in the scratch root that is
//! walked after each input, so an entry climbing out of it with `..` lands
//! where the walk sees it (an absolute path is caught the same way: the
//! archive's names are all under the cache or nowhere).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use compose::pack::{Pack, unpack};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| std::env::temp_dir().join(format!("gtpack-fuzz-{}", std::process::id())))
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let root = scratch();
    let _ = std::fs::remove_dir_all(root);
    let inside = (0..12).fold(root.join("inside"), |dir, n| dir.join(n.to_string()));
    let cache = inside.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let archive = root.join("fuzz.gtpack");
    std::fs::write(&archive, data).unwrap();
    if let Ok(dir) = unpack(&archive, &cache) {
        assert!(
            dir.starts_with(&cache),
            "unpacked outside the cache: {}",
            dir.display()
        );
        let _ = Pack::open_dir(&dir);
    }
    // Nothing escaped: the only files outside the cache are the archive.
    let mut written = Vec::new();
    files(root, &mut written);
    for file in written {
        assert!(
            file == archive || file.starts_with(&cache),
            "wrote outside the cache: {}",
            file.display()
        );
    }
});
