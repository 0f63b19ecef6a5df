//! `adapt-v05-pre-i18n`: the legacy adapter of `adapt-common` for `node@0.5.0` (older record shape without i18n-id).
include!("../../adapt-common/legacy.rs");
