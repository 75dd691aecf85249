//! Fuzzes `corelog::protocol::request::decode_request`, the first code that
//! sees a client's bytes: any input must give `Ok` or `Err`, never a panic,
//! a hang, or an allocation failure abort.
//!
//! No `#[global_allocator]` here on purpose: corelog's own
//! (`runtime::allocator::GuardedAllocator`, declared in its `lib.rs`) is the
//! allocator of every binary that links the library, this one included, so
//! hostile array lengths are exercised exactly as in the broker. Declaring a
//! second one would not compile.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let _ = corelog::protocol::request::decode_request(bytes::Bytes::copy_from_slice(frame));
});
