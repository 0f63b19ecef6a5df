//! The `host-shim` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    host_shim::main_with_args(std::env::args_os())
}
