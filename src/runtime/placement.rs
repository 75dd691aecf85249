//! Partition -> shard placement. Deterministic and stateless, so every shard
//! computes the same owner without asking anyone, and a restart with the same
//! `--cores` puts every partition back on the same shard.
//!
//! Partitions of one topic go round-robin over shards from a per-topic start
//! (a stable hash of the name), so a topic with at least as many partitions as
//! shards uses every core, and many small topics still spread out.

/// FNV-1a 64: stable across runs and platforms (unlike `std`'s SipHash keys).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The shard that owns `topic`/`partition` among `shard_count` shards.
pub fn owner_shard(topic: &str, partition: i32, shard_count: usize) -> usize {
    debug_assert!(shard_count > 0);
    if shard_count <= 1 {
        return 0;
    }
    let start = stable_hash(topic.as_bytes()) % shard_count as u64;
    let partition = u64::from(partition.unsigned_abs());
    ((start + partition) % shard_count as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_deterministic_and_in_range() {
        for shards in 1..8 {
            for partition in 0..32 {
                let owner = owner_shard("orders", partition, shards);
                assert!(owner < shards);
                assert_eq!(owner, owner_shard("orders", partition, shards));
            }
        }
    }

    #[test]
    fn a_topic_with_enough_partitions_uses_every_shard() {
        let mut used = [false; 4];
        for partition in 0..4 {
            used[owner_shard("events", partition, 4)] = true;
        }
        assert!(used.iter().all(|u| *u));
    }

    #[test]
    fn one_shard_owns_everything() {
        assert_eq!(owner_shard("x", 17, 1), 0);
    }
}
