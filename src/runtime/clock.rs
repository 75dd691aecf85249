//! The broker's one wall clock: milliseconds since the Unix epoch, the unit
//! of every Kafka timestamp (record times, commit times, deadlines). Pure
//! and callable on any shard or thread; the pure state machines (`group`,
//! `txn`, `log` decisions) take the time as an argument instead.

/// Now, in Kafka's timestamp unit. A clock set before 1970 reads as 0 rather
/// than failing a request.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_2020_and_monotonic_enough() {
        let first = super::now_ms();
        assert!(first > 1_577_836_800_000, "clock reads {first}");
        assert!(super::now_ms() >= first);
    }
}
