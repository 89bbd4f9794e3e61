//! How the `wfc` process asks glibc's malloc for memory. The library does
//! not touch the allocator; only the command line knows whether it is a
//! short batch (check a file, exit), whose time counts, or a run or server,
//! whose resident memory does. Both are set before any thread starts.

/// For a command that reads, checks and exits: grows malloc's heap by 32 MiB
/// at once, keeps large blocks in it (not in mmaps of their own, unmapped
/// when freed and faulted in again by the next one, as pest's token queues
/// are) and backs it with transparent huge pages. Checking the 10,000-task
/// file otherwise takes over 10,000 page faults, a fifth of its time; with
/// 2 MiB pages, about a thousand (the binary's own and the other threads').
/// Each thread keeps the arena glibc gives it: the threads that parse parts
/// of a large file allocate their trees at the same time, and on one shared
/// arena they wait for its lock.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn for_batch() {
    const HUGE_PAGE: usize = 2 << 20;
    // The most malloc's mmap threshold may be on 64-bit glibc.
    const BATCH_HEAP: usize = 32 << 20;
    // SAFETY: malloc's parameters are set before this process allocates
    // anything large; `sbrk(0)` only reads where the heap ends; madvise
    // with MADV_HUGEPAGE changes how the kernel backs pages, never what
    // they hold, and fails harmlessly where huge pages are off.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, BATCH_HEAP as i32);
        libc::mallopt(libc::M_TRIM_THRESHOLD, (4 * BATCH_HEAP) as i32);
        libc::mallopt(libc::M_TOP_PAD, BATCH_HEAP as i32);
        let old_end = libc::sbrk(0) as usize;
        // More than the heap has left, so malloc grows it by the pad now
        // (`black_box`: the compiler would drop a block nothing uses).
        libc::free(std::hint::black_box(libc::malloc(HUGE_PAGE)));
        let end = libc::sbrk(0) as usize;
        let start = old_end.next_multiple_of(HUGE_PAGE);
        if start < end {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

/// For a run, a server or a worker: one arena for every thread, in 4 KiB
/// pages. glibc gives each thread that allocates an arena of its own, and
/// memory one arena frees is never reused by another: the threads that
/// parse and check a large file would leave megabytes behind that a run,
/// allocating on tokio's workers, cannot use (a 10,000-task run peaked at
/// 50.1 MiB with an arena per thread, 45.6 MiB with one). Each thread's
/// small-allocation cache keeps most allocations off the shared arena's
/// lock.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn for_long_runs() {
    // SAFETY: runs before any other thread exists, and only sets one of
    // malloc's parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn for_batch() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn for_long_runs() {}
