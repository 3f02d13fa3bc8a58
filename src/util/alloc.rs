//! Returning freed memory to the system: one FFI call to glibc's `malloc_trim`, hence `unsafe`.
#![allow(unsafe_code)]

/// Returns the memory the allocator holds free to the system. glibc keeps freed memory for reuse
/// and gives back only the top of its heap, so a scan whose hash tables grew (each growth frees
/// the smaller table) or whose accumulators were consumed would keep those pages resident while
/// it allocates results of other sizes. Costs a walk over the free chunks (milliseconds); a no-op
/// with other allocators.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas; it takes their
    // locks and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
