use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    match waftune::cli::run(waftune::cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            waftune::cli::print_error(&e);
            ExitCode::from(waftune::cli::exit::ERROR)
        }
    }
}

/// glibc gives every thread that allocates its own arena, and memory freed in one arena is not
/// reused by the others: on a week of logs the scan workers' arenas held 20-25 MB of peak RSS
/// beyond the heap. The workers allocate little per record, so one shared arena costs them no
/// measurable time (docs/benchmarks.md, "Memory in time"). `MALLOC_ARENA_MAX`, when set, wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
        // exists, and a refused setting (return value 0) leaves glibc's default in place.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
