//! The process allocator: the system allocator, except that huge requests
//! (>= 1 GiB) are served by lazily-backed anonymous mappings.
//!
//! Why: the request codecs (`kafka-protocol`) size a `Vec` from the array
//! length a client sends before decoding its elements. A 2^31 count asks for
//! hundreds of GB, the system allocator fails, and Rust aborts the whole
//! broker on allocation failure. With `MAP_NORESERVE` the reservation costs
//! only address space; pages are touched only as elements are actually
//! decoded, which a frame bounded by `--max-request-bytes` limits, and the
//! decode then fails cleanly with "not enough bytes". Memory a request really
//! uses is unchanged.

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests at least this large get their own mapping.
pub const HUGE_ALLOCATION_BYTES: usize = 1 << 30;
const PAGE_BYTES: usize = 4096;

pub struct GuardedAllocator;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE_ALLOCATION_BYTES && layout.align() <= PAGE_BYTES
}

unsafe fn map_huge(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping has no preconditions.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        address.cast()
    }
}

// SAFETY: every pointer handed out is either from `System` (and returned to
// it) or from `mmap` of exactly `layout.size()` bytes (and unmapped with that
// size); the two are told apart by the same `is_huge(layout)` test on both
// sides, which GlobalAlloc's contract (same layout on dealloc) makes sound.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            unsafe { map_huge(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // Fresh anonymous pages are zero.
            unsafe { map_huge(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            unsafe { libc::munmap(pointer.cast(), layout.size()) };
        } else {
            unsafe { System.dealloc(pointer, layout) }
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            return unsafe { System.realloc(pointer, layout, new_size) };
        }
        let new_pointer = unsafe { self.alloc(new_layout) };
        if !new_pointer.is_null() {
            let copied = layout.size().min(new_size);
            unsafe {
                std::ptr::copy_nonoverlapping(pointer, new_pointer, copied);
                self.dealloc(pointer, layout);
            }
        }
        new_pointer
    }
}

/// Allocations below this come from glibc's heaps, not from their own
/// mapping (glibc's most, `HEAP_MAX_SIZE / 2`).
const MMAP_THRESHOLD_BYTES: libc::c_int = 32 << 20;
/// Free memory at the top of a heap is kept up to this much instead of being
/// handed back after every large free.
const TRIM_THRESHOLD_BYTES: libc::c_int = 256 << 20;

/// Tunes glibc for the broker's buffers (record batches, fetch and produce
/// frames: 100 KiB to a few MiB, allocated and freed thousands of times a
/// second). By default glibc maps each of them on its own and unmaps it on
/// free, or trims the heap right after, and the kernel then faults in and
/// zeroes fresh pages for the next one: 18% of the broker's CPU at 1,000
/// partitions. Kept free memory goes back after bursts, when the response
/// budget drains (`server::response_memory` calls `malloc_trim`). Call once,
/// before the shards start.
pub fn keep_buffer_memory() {
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_absurd_capacity_does_not_abort() {
        // What a hostile array length makes the codec do.
        let mut huge: Vec<[u8; 64]> = Vec::with_capacity(1 << 31);
        huge.push([1u8; 64]);
        assert_eq!(huge.len(), 1);
        huge.shrink_to_fit();
        assert_eq!(huge[0][0], 1);
    }
}
