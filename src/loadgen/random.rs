//! A small, fast, seeded pseudo-random generator (xorshift64*) for keys and
//! message sizes: reproducible runs, no shared state, no crate needed.

use super::scenario::MessageSize;

pub struct Random {
    state: u64,
}

impl Random {
    pub fn seeded(seed: u64) -> Random {
        Random {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws one message size from the scenario's distribution.
pub fn message_size(size: &MessageSize, random: &mut Random) -> usize {
    match *size {
        MessageSize::Fixed { bytes } => bytes,
        MessageSize::Uniform {
            min_bytes,
            max_bytes,
        } => min_bytes + random.below((max_bytes - min_bytes + 1) as u64) as usize,
        MessageSize::Normal {
            mean_bytes,
            stddev_bytes,
        } => {
            // Box-Muller; clamped to at least one byte.
            let u1 = random.unit().max(f64::MIN_POSITIVE);
            let u2 = random.unit();
            let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (mean_bytes as f64 + normal * stddev_bytes as f64)
                .round()
                .max(1.0) as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_their_distribution() {
        let mut random = Random::seeded(7);
        let uniform = MessageSize::Uniform {
            min_bytes: 10,
            max_bytes: 20,
        };
        for _ in 0..1000 {
            let size = message_size(&uniform, &mut random);
            assert!((10..=20).contains(&size));
        }
        let normal = MessageSize::Normal {
            mean_bytes: 1000,
            stddev_bytes: 100,
        };
        let mean: f64 = (0..10_000)
            .map(|_| message_size(&normal, &mut random) as f64)
            .sum::<f64>()
            / 10_000.0;
        assert!((mean - 1000.0).abs() < 10.0, "mean {mean}");
    }
}
