//! Stages greentic:component@0.4.0 from greentic-interfaces 0.4 for wit-bindgen.
const PACKAGE: &str = "greentic-component-0.4.0";
const WORLD: &str = "greentic:component/component@0.4.0";
const PRE_I18N: bool = false;
include!("../legacy-common/build.rs");
