//! The `wfc` command line, over the library.

mod cli;

fn main() {
    one_malloc_arena();
    std::process::exit(cli::main());
}

/// glibc gives each thread that allocates an arena of its own, and memory
/// one arena frees is never reused by another: the threads that parse and
/// check a large file would leave megabytes behind that a run, allocating on
/// tokio's workers, cannot use (a 10,000-task run peaked at 50.1 MiB with an
/// arena per thread, 45.6 MiB with one). Each thread's small-allocation
/// cache keeps most allocations off the shared arena's lock.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: runs first in `main`, before any other thread exists, and
    // only sets one of malloc's parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}
