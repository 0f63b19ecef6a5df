//! `app-front`: put by `host-shim compose` in front of the runner, so the
//! composed component exports `greentic:runner/app@0.1.0` and runs the flow
//! baked into it.

use front_kit::AppFront;

front_kit::bindings::export_app_front!(AppFront);
