//! Random ids as Kafka draws them (`Uuid.randomUuid`): never the zero id
//! nor the metadata topic's reserved id, and never one whose URL-safe
//! base64 form starts with `-`, which command-line tools would read as a
//! flag (`kafka-topics --topic-id -abc...`).

use uuid::Uuid;

/// A new topic id (also the random part of cluster ids).
pub fn random_uuid() -> Uuid {
    loop {
        let uuid = Uuid::new_v4();
        if usable(&uuid) {
            return uuid;
        }
    }
}

/// Kafka's reserved ids: zero, and the metadata topic's (`Uuid.ONE_UUID`).
fn usable(uuid: &Uuid) -> bool {
    let value = uuid.as_u128();
    // '-' is the 63rd base64 letter: the first six bits 0b111110.
    value > 1 && uuid.as_bytes()[0] >> 2 != 62
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_read_as_flags_nor_take_reserved_values() {
        assert!(!usable(&Uuid::nil()));
        assert!(!usable(&Uuid::from_u128(1)));
        let mut flag_like = [0u8; 16];
        flag_like[0] = 0b1111_1000;
        assert!(!usable(&Uuid::from_bytes(flag_like)));
        flag_like[0] = 0b1111_1100;
        assert!(usable(&Uuid::from_bytes(flag_like)));
        for _ in 0..10_000 {
            let id = random_uuid();
            assert!(usable(&id));
        }
    }
}
