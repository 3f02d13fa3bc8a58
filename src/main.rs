use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` in mimalloc.h (v2 and v3 alike).
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() -> ExitCode {
    // By default mimalloc commits arenas eagerly and returns freed memory to the OS late. A scan frees
    // a file's buffers as it goes, so that only inflates resident memory: measured on a 1.2 GB day,
    // 120 MB -> 67 MB at the same speed.
    // SAFETY: setting options has no preconditions; both are documented as settable at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
    match waftune::cli::run(waftune::cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(waftune::cli::exit::ERROR)
        }
    }
}
