//! The `host-shim` binary; everything lives in the library.

/// mimalloc instead of glibc's malloc: a server allocates and frees small
/// values on many threads for every request, and glibc's arenas spent a
/// tenth of `serve`'s time there under load (`malloc`, `_int_free`,
/// `malloc_consolidate` in `perf`; bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    host_shim::main_with_args(std::env::args_os())
}
