//! The process's one CPU pool for data-parallel work.
//!
//! Jobs run on their slot's own thread: decoding, the serial parts of meshing, writing files
//! and waiting for the disk never hold a pool thread. Only data-parallel sections (`par_iter`,
//! `rayon::join`, the model kernels' GEMMs) enter the pool, and every caller in the process
//! shares it: rayon's global pool. Two processors, or a single-image call beside a batch,
//! therefore add runnable work, never threads; a pool per processor would double the threads
//! and let jobs nest inside each other's `install` (a pool thread waiting in `join` steals
//! whatever is queued, another job's whole pipeline included).
//!
//! The pool's size is fixed the first time anything in the process uses rayon. A processor
//! created with `threads` sizes it when it is first; a later, different request is logged and
//! the pool stays as it is.

use std::sync::Mutex;

/// Makes sure the pool exists, sized to `threads` when this call creates it (default: every
/// core, rayon's own default), and returns its size.
pub fn ensure_pool(threads: Option<usize>) -> usize {
    // Serialises first use: two processors starting at once must not both try to build it.
    static FIRST_USE: Mutex<()> = Mutex::new(());
    let _first = FIRST_USE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = threads.filter(|&n| n > 0) {
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("orfeas-cpu-{i}"))
            .build_global();
        let size = pool_size();
        if built.is_err() && size != n {
            tracing::warn!(
                requested = n,
                size,
                "the process's CPU pool already exists with {size} threads; {n} were asked for"
            );
        }
        return size;
    }
    pool_size()
}

/// The number of threads of the process's pool (creating it with its default size when
/// nothing has used rayon yet).
pub fn pool_size() -> usize {
    // Called outside the pool, this is the global pool's size.
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_shared_and_keeps_its_first_size() {
        let size = ensure_pool(None);
        assert!(size >= 1);
        // Whatever is asked later, the process keeps one pool.
        assert_eq!(ensure_pool(Some(size + 3)), size);
        assert_eq!(pool_size(), size);
    }
}
