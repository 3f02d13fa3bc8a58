use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tune_malloc();
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
/// measurable time (docs/benchmarks.md, "Memory in time").
///
/// Blocks of 128 KiB and more are mapped on their own and given back when freed, but glibc raises
/// that threshold to the size of each such block freed (up to 32 MiB): after the first file buffer
/// or outgrown table is freed, the next ones come from the heap and stay resident when freed
/// (20-30 MB of a week's peak). A threshold set once stays where it is.
///
/// `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_`, when set, win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    let set = |param, value| {
        // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
        // exists, and a refused setting (return value 0) leaves glibc's default in place.
        unsafe { libc::mallopt(param, value) }
    };
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        set(libc::M_ARENA_MAX, 1);
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        set(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
