package dev.corelog.clients;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * What a test may ask of the broker the cargo driver started for it, through files in the
 * directory named by the system property {@code corelog.brokerControl} (set by
 * {@code tests/java_client.rs}, which watches it while the suite runs).
 *
 * <p>A restart: the test writes {@code restart-<n>}; the driver stops the broker by its PID
 * (SIGTERM, a clean shutdown), starts it again on the same data directory and port, and writes
 * {@code restarted-<n>} (the new PID) once the broker listens. The test's clients keep running
 * meanwhile and reconnect by themselves.
 */
final class BrokerControl {
    /** Stopping a broker with 2,000 partitions (index files written, synced) and starting it. */
    static final Duration RESTART_WAIT = Duration.ofSeconds(90);

    private static int restarts;

    private BrokerControl() {}

    /** The control directory; fails unless the suite runs under the cargo driver that watches it. */
    static Path directory() {
        String directory = System.getProperty("corelog.brokerControl");
        if (directory == null || directory.isBlank()) {
            throw new AssertionError("no broker to control: run this class through `cargo test --release --test"
                    + " java_client java_consumer_fetch_sessions`, which starts corelog and sets -Dcorelog.brokerControl");
        }
        return Path.of(directory);
    }

    /** Asks the driver to restart the broker; returns the file whose appearance says it is back. */
    static Path requestRestart() {
        restarts++;
        Path request = directory().resolve("restart-" + restarts);
        try {
            Files.writeString(request, "restart\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return directory().resolve("restarted-" + restarts);
    }

    /** Whether the restart whose marker is {@code restarted} is done; fails after {@code since + RESTART_WAIT}. */
    static boolean restarted(Path restarted, long sinceNanos) {
        if (Files.exists(restarted)) {
            return true;
        }
        if (System.nanoTime() - sinceNanos > RESTART_WAIT.toNanos()) {
            fail("the broker was not restarted within " + RESTART_WAIT + " (no " + restarted + ")");
        }
        return false;
    }
}
