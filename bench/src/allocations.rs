//! The process's allocator, counting each thread's allocations (and reallocations), for
//! the figures that state how many a path makes. The count is the thread's own, so that
//! counting costs no shared cache line: the other figures run as without it. Underneath
//! is mimalloc, host-sim's allocator, so the fleet story costs here what it costs there.

use std::{
    alloc::{GlobalAlloc, Layout},
    cell::Cell,
};

use mimalloc::MiMalloc;

pub struct Counting;

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn counted() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is mimalloc's; the counter only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        MiMalloc.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted();
        MiMalloc.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        MiMalloc.realloc(ptr, layout, new_size)
    }
}

/// Allocations so far, on this thread.
pub fn count() -> u64 {
    ALLOCATIONS.with(Cell::get)
}
