//! Stages greentic:component@0.5.0 from greentic-interfaces 0.4 for wit-bindgen, without `i18n-id` (the older record shape).
const PACKAGE: &str = "greentic-component-0.5.0";
const WORLD: &str = "greentic:component/component@0.5.0";
const PRE_I18N: bool = true;
include!("../legacy-common/build.rs");
