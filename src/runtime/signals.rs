//! SIGINT/SIGTERM -> graceful shutdown. The signals are registered before
//! the shards start (so an early one is not lost) and the main thread then
//! blocks until one arrives; it then tells every shard to stop.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

pub struct ShutdownSignals {
    signals: Signals,
}

impl ShutdownSignals {
    pub fn register() -> std::io::Result<ShutdownSignals> {
        Ok(ShutdownSignals {
            signals: Signals::new([SIGINT, SIGTERM])?,
        })
    }

    /// Blocks until SIGINT or SIGTERM; returns the signal number.
    pub fn wait(&mut self) -> i32 {
        self.signals.forever().next().unwrap_or(SIGTERM)
    }
}
