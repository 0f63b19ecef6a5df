//! `legacy-v04`: the legacy node of `legacy-common` on `greentic:component@0.4.0`.
include!("../../legacy-common/node.rs");
