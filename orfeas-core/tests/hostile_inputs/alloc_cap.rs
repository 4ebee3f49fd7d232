//! The test binary's global allocator: the system allocator, remembering the largest single
//! request so that the properties can assert "no allocation sized by a hostile header", and
//! refusing absurd requests outright (the process then aborts with "memory allocation of N
//! bytes failed" instead of swapping the CI machine).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Larger requests fail at once.
const HARD_CAP: usize = 2 << 30;

/// No single allocation of any test in this binary legitimately comes near this (the largest
/// fixture is 8 MB, the largest decoded image a few MB under the limits the tests set).
pub const SOFT_CAP: usize = 256 << 20;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
/// Bytes allocated and not yet freed, and the most of them since [`peak_growth`] last began.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Capped;

fn admit(size: usize) -> bool {
    LARGEST.fetch_max(size, Ordering::Relaxed);
    size <= HARD_CAP
}

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`, or fails with a null pointer, which
// `GlobalAlloc` allows.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !admit(layout.size()) {
            return std::ptr::null_mut();
        }
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !admit(layout.size()) {
            return std::ptr::null_mut();
        }
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !admit(new_size) {
            return std::ptr::null_mut();
        }
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Capped = Capped;

/// The largest single allocation so far in this process, in bytes.
pub fn largest() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

/// Fails the current case when any allocation so far exceeded [`SOFT_CAP`].
pub fn assert_no_huge_allocation(context: &str) {
    let largest = largest();
    assert!(
        largest <= SOFT_CAP,
        "an allocation of {largest} bytes (over {SOFT_CAP}) happened; this case: {context}"
    );
}

/// Runs `f` and returns how far the bytes in use rose above where they were when it started
/// (all threads count: other tests running meanwhile add their own, at most some MB).
pub fn peak_growth<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let r = f();
    (r, PEAK.load(Ordering::Relaxed).saturating_sub(start))
}
