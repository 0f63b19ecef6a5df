//! `legacy-v05-pre-i18n`: the legacy node of `legacy-common`, in the record shape without `i18n-id`, on `greentic:component@0.5.0`.
include!("../../legacy-common/node.rs");
