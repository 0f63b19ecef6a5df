//! `adapt-v04-pre-i18n`: the legacy adapter of `adapt-common` for `node@0.4.0` (older record shape without i18n-id).
include!("../../adapt-common/legacy.rs");
