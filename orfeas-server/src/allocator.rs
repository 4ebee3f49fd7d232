//! The `orfeas` binary's allocator: mimalloc, told to keep freed pages mapped.
//!
//! Why: the model's forward pass allocates and frees tensors of 2–35 MB hundreds of times.
//! Returned to the kernel, every one comes back as fresh pages that the kernel must zero on
//! first touch (with transparent huge pages, 2 MB at a time); with the default allocators that
//! was ~12 % of the CPU time of a Depth Anything forward (`perf stat`: 12 300 page faults with
//! mimalloc's default 10 ms purge delay, 210 000 with glibc, 470 with purging off); the CPU
//! kernels have since stopped allocating per product, and glibc is now within ~3 % of this set-up
//! (docs/performance.md §3). The cost is
//! that a process keeps its peak heap until it exits, which suits a batch command and a server
//! whose peak is set by its slot count. The library itself never picks an allocator: Python and
//! Node use their host's.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v2's `mi_option_t` (libmimalloc-sys exports the enum's
/// values only up to `mi_option_max_segment_reclaim`); -1 means "never purge".
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns purging off; call first thing in `main`.
pub fn keep_freed_pages() {
    // SAFETY: sets a plain integer option of the allocator linked above; mimalloc reads its
    // options racily by design, and nothing has been purged this early in `main`.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}
