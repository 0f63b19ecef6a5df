//! `legacy-v05`: the legacy node of `legacy-common` on `greentic:component@0.5.0`.
include!("../../legacy-common/node.rs");
