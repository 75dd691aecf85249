//! The shard's budget of response bytes waiting for a socket. A response is
//! charged from the moment its frame is encoded until the socket took all of
//! it (`connection::write_responses`), so a consumer that stops reading keeps
//! at most one frame charged: its connection answers in order, and the next
//! responses are not built while one waits.
//!
//! The budget shapes fetches instead of blocking them: a Fetch may fill at
//! most `fetch_allowance` bytes, the smaller of what it asked, the per-response
//! cap and a quarter of what the shard has left (never below a floor). Stuck
//! or slow consumers thus take a bounded share each and push everyone towards
//! smaller responses rather than stopping them, and the shard's response
//! memory stays near the budget: past it only by fetches already being built
//! and the floor-sized answers of the others. Kafka's rule that a fetch
//! returns at least one whole batch (KIP-74) can pass the allowance by one
//! batch.
//!
//! When the waiting bytes drain to zero after a burst past
//! `TRIM_AFTER_BYTES`, the freed heap is handed back to the kernel
//! (`malloc_trim`): glibc keeps large freed blocks for reuse otherwise, and a
//! burst of stuck consumers would leave the broker's RSS high long after they
//! left. Lives on one shard (`Rc`, `Cell`).

use std::cell::Cell;
use std::rc::Rc;

use crate::limits::{
    FETCH_RESPONSE_BYTES_FLOOR, FETCH_RESPONSE_BYTES_MAX, RESPONSE_MEMORY_BYTES_PER_SHARD,
};

/// A burst of waiting response bytes at least this large is followed by a
/// `malloc_trim` once they drained.
const TRIM_AFTER_BYTES: u64 = 64 << 20;

#[derive(Debug)]
pub struct ResponseMemory {
    budget: u64,
    waiting: Cell<u64>,
    /// Most bytes waiting since the last drain to zero.
    peak: Cell<u64>,
}

/// A response's bytes, charged until dropped.
#[derive(Debug)]
pub struct ResponseCharge {
    memory: Rc<ResponseMemory>,
    bytes: u64,
}

impl Default for ResponseMemory {
    fn default() -> Self {
        ResponseMemory::with_budget(RESPONSE_MEMORY_BYTES_PER_SHARD)
    }
}

impl ResponseMemory {
    pub fn with_budget(budget: u64) -> ResponseMemory {
        ResponseMemory {
            budget,
            waiting: Cell::new(0),
            peak: Cell::new(0),
        }
    }

    /// Response bytes charged now (may pass the budget, see the module).
    pub fn waiting_bytes(&self) -> u64 {
        self.waiting.get()
    }

    /// The most bytes a Fetch asking for `max_bytes` may fill now.
    pub fn fetch_allowance(&self, max_bytes: i32) -> usize {
        let asked = u64::try_from(max_bytes).unwrap_or(0).max(1);
        let left = self.budget.saturating_sub(self.waiting.get());
        let share = (left / 4).max(FETCH_RESPONSE_BYTES_FLOOR);
        let allowance = asked.min(FETCH_RESPONSE_BYTES_MAX).min(share);
        usize::try_from(allowance).unwrap_or(usize::MAX)
    }

    /// Charges `bytes` of an encoded response until the charge is dropped.
    pub fn charge(self: &Rc<Self>, bytes: usize) -> ResponseCharge {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let waiting = self.waiting.get().saturating_add(bytes);
        self.waiting.set(waiting);
        self.peak.set(self.peak.get().max(waiting));
        ResponseCharge {
            memory: Rc::clone(self),
            bytes,
        }
    }
}

impl Drop for ResponseCharge {
    fn drop(&mut self) {
        let memory = &self.memory;
        let waiting = memory.waiting.get().saturating_sub(self.bytes);
        memory.waiting.set(waiting);
        if waiting == 0 && memory.peak.replace(0) >= TRIM_AFTER_BYTES {
            // SAFETY: malloc_trim only releases free heap pages.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_fetch_gets_what_it_asked_up_to_the_cap() {
        let memory = ResponseMemory::with_budget(256 * MIB);
        assert_eq!(memory.fetch_allowance(1_000), 1_000);
        assert_eq!(
            memory.fetch_allowance(50 << 20),
            FETCH_RESPONSE_BYTES_MAX as usize
        );
        assert_eq!(memory.fetch_allowance(-1), 1, "nonsense asks for one byte");
    }

    #[test]
    fn responses_waiting_for_sockets_shrink_the_next_fetches_down_to_the_floor() {
        let memory = Rc::new(ResponseMemory::with_budget(64 * MIB));
        let ask = i32::MAX;
        // A quarter of what is left, under the cap.
        let stuck: Vec<ResponseCharge> = (0..6).map(|_| memory.charge(8 << 20)).collect();
        assert_eq!(memory.waiting_bytes(), 48 * MIB);
        assert_eq!(memory.fetch_allowance(ask), (4 * MIB) as usize);
        // Past the budget: the floor, never zero, so everyone is still served.
        let more: Vec<ResponseCharge> = (0..4).map(|_| memory.charge(8 << 20)).collect();
        assert_eq!(
            memory.fetch_allowance(ask),
            FETCH_RESPONSE_BYTES_FLOOR as usize
        );
        // The bytes come back as the sockets drain.
        drop(more);
        drop(stuck);
        assert_eq!(memory.waiting_bytes(), 0);
        assert_eq!(
            memory.fetch_allowance(ask),
            FETCH_RESPONSE_BYTES_MAX as usize
        );
    }
}
