package dev.corelog.streams;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.streams.KafkaStreams;

/**
 * The order-routing application ({@link Orders}) in a JVM of its own, so that
 * {@link ExactlyOnceRestartTest} can kill it with SIGKILL in the middle of a transaction, as a
 * crash or an OOM kill would: no commit, no abort, no goodbye to the group.
 *
 * <p>{@code main} starts the application, prints each state it enters ({@value #RUNNING} among
 * them), and then runs until killed (or until its standard input closes). {@link #start}
 * launches it from a test.
 */
final class OrdersApplication {
    static final String RUNNING = "RUNNING";

    private final Process process;
    private final List<String> output = new CopyOnWriteArrayList<>();

    private OrdersApplication(Process process) {
        this.process = process;
        Thread reader = new Thread(() -> {
            try (BufferedReader lines = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = lines.readLine()) != null) {
                    output.add(line);
                }
            } catch (IOException e) {
                output.add("(reading the output failed: " + e + ")");
            }
        }, "orders-application-output");
        reader.setDaemon(true);
        reader.start();
    }

    /**
     * Launches the application with the test JVM's java and class path, and waits (within
     * {@link Corelog#WAIT}) until it reports RUNNING.
     */
    static OrdersApplication start(String applicationId, String instance, Orders.Topics topics, long delayPerOrderMs)
            throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String clientLog = System.getProperty("org.slf4j.simpleLogger.logFile", "target/kafka-streams.log");
        Path instanceLog = Path.of(clientLog).toAbsolutePath().resolveSibling("kafka-streams-" + instance + ".log");
        List<String> command = new ArrayList<>(List.of(java, "-Xmx256m",
                "-cp", System.getProperty("java.class.path"),
                "-DCORELOG_BOOTSTRAP=" + Corelog.bootstrap(),
                "-Dcorelog.stateDirectory=" + System.getProperty("corelog.stateDirectory", "target/state"),
                "-Dorg.slf4j.simpleLogger.logFile=" + instanceLog,
                OrdersApplication.class.getName(),
                applicationId, instance, Long.toString(delayPerOrderMs)));
        command.addAll(List.of(topics.all()));
        OrdersApplication application = new OrdersApplication(
                new ProcessBuilder(command).redirectErrorStream(true).start());
        try {
            Corelog.waitUntil("the application in its own JVM is RUNNING (log: " + instanceLog + ")", () -> {
                if (!application.process.isAlive()) {
                    throw new AssertionError("the application's JVM exited with "
                            + application.process.exitValue() + ": " + application.output);
                }
                return application.output.contains(RUNNING);
            });
        } catch (RuntimeException | Error e) {
            application.kill();
            throw e;
        }
        return application;
    }

    /** SIGKILL, then waits until the process is gone. */
    void kill() {
        process.destroyForcibly();
        try {
            if (!process.waitFor(Corelog.WAIT.toSeconds(), TimeUnit.SECONDS)) {
                throw new AssertionError("the application's JVM outlived SIGKILL for " + Corelog.WAIT);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Arguments: application id, instance name, delay per order in ms, then the topics. */
    public static void main(String[] args) throws IOException {
        String applicationId = args[0];
        String instance = args[1];
        long delayPerOrderMs = Long.parseLong(args[2]);
        Orders.Topics topics = new Orders.Topics(args[3], args[4], args[5]);
        KafkaStreams streams = new KafkaStreams(Orders.topology(topics, delayPerOrderMs),
                Corelog.streamsConfig(applicationId, instance));
        streams.setStateListener((now, before) -> {
            System.out.println(now);
            System.out.flush();
        });
        streams.start();
        // Killed from outside. Should the test JVM die first, its end of this process's
        // standard input closes: the application then stops too, instead of living on.
        try {
            while (System.in.read() != -1) {
                // Nothing is sent on standard input; it only tells that the test JVM lives.
            }
        } finally {
            streams.close(Duration.ofSeconds(5));
        }
    }
}
