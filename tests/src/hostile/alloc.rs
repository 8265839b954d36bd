//! A counting global allocator: per-thread current and peak bytes, so tests running in
//! parallel threads do not see each other's allocations. A test binary installs it with
//! `#[global_allocator] static ALLOC: Counting = Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The allocator; see the module docs.
pub struct Counting;

thread_local! {
    static CUR: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

pub fn note(delta: i64) {
    // try_with: the allocator also runs while thread-locals are being torn down.
    let _ = CUR.try_with(|c| {
        let v = c.get() + delta;
        c.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// plain thread-local integers.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            note(l.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            note(l.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        note(-(l.size() as i64));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            // Counted as new-then-free: the peak of a moving realloc.
            note(new as i64);
            note(-(l.size() as i64));
        }
        q
    }
}

/// Run `f` and return its result with the peak bytes it had allocated at once (on
/// this thread, above what was live when it started).
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let base = CUR.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get) - base;
    (r, peak.max(0) as u64)
}

/// The constant of the memory bound (report structs, strings, the small metadata
/// sections, one certificate chain): peak <= 2 * input + MEM_SLACK.
pub const MEM_SLACK: u64 = 1 << 20;

/// The memory bound for an input of `len` bytes.
pub fn mem_bound(len: usize) -> u64 {
    2 * len as u64 + MEM_SLACK
}
