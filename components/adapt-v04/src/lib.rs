//! `adapt-v04`: the legacy adapter of `adapt-common` for `node@0.4.0` (record shape with i18n-id).
include!("../../adapt-common/legacy.rs");
