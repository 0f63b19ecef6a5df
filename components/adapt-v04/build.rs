//! Stages node@0.6.0 beside the legacy greentic:component@0.4.0 (record shape with i18n-id).
const ABI: greentic_runner_wit::AdaptedAbi = greentic_runner_wit::AdaptedAbi::Legacy {
    package: "greentic-component-0.4.0",
    pre_i18n: false,
};
const IMPORT: &str = "greentic:component/node@0.4.0";
include!("../adapt-common/build.rs");
