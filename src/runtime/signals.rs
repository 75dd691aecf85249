//! SIGINT/SIGTERM -> graceful shutdown. A plain thread waits for the signal
//! (signal-hook) and resolves one oneshot per shard; each shard then stops
//! accepting, flushes and closes its partitions.

use futures::channel::oneshot;

/// Spawns the signal thread; returns one receiver per shard.
pub fn shutdown_on_signal(shard_count: usize) -> std::io::Result<Vec<oneshot::Receiver<()>>> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let mut senders = Vec::with_capacity(shard_count);
    let mut receivers = Vec::with_capacity(shard_count);
    for _ in 0..shard_count {
        let (sender, receiver) = oneshot::channel();
        senders.push(sender);
        receivers.push(receiver);
    }
    std::thread::Builder::new()
        .name("corelog-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tracing::info!(signal, "shutdown requested");
                for sender in senders {
                    let _ = sender.send(());
                }
            }
        })?;
    Ok(receivers)
}
