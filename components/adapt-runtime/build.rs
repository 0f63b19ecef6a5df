//! Stages node@0.6.0 with the component-runtime interface beside it.
const ABI: greentic_runner_wit::AdaptedAbi = greentic_runner_wit::AdaptedAbi::Runtime;
const IMPORT: &str = "greentic:component/component-runtime@0.6.0";
include!("../adapt-common/build.rs");
