//! The session snapshot decoder: arbitrary text never panics; a snapshot that
//! decodes encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runner_core::Snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snapshot) = Snapshot::from_json(text) {
        let encoded = snapshot.to_json();
        let again = Snapshot::from_json(&encoded).expect("our own snapshot decodes");
        assert_eq!(snapshot, again, "snapshot round trip changed it");
        assert_eq!(encoded, again.to_json());
    }
});
