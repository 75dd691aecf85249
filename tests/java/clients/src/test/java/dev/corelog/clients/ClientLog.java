package dev.corelog.clients;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The clients' own log (slf4j-simple writes it to {@code target/kafka-clients.log}, flushed
 * after every line; see {@code simplelogger.properties}). NetworkClient logs each request it
 * sends with its API key and version, FetchSessionHandler each fetch session decision, and
 * every line carries the client id ({@code [Consumer clientId=..., groupId=...]}).
 */
final class ClientLog {
    private ClientLog() {}

    static Path path() {
        String file = System.getProperty("org.slf4j.simpleLogger.logFile");
        if (file == null || file.isBlank() || file.equals("System.err") || file.equals("System.out")) {
            throw new AssertionError(
                    "the client log goes to no file: run the suite through its pom (mvn test), which sets"
                            + " org.slf4j.simpleLogger.logFile");
        }
        return Path.of(file);
    }

    static List<String> lines() {
        try {
            return Files.readAllLines(path(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The lines logged by the client whose {@code client.id} is {@code clientId}. */
    static List<String> linesOf(String clientId) {
        String marker = "clientId=" + clientId;
        return lines().stream()
                .filter(line -> {
                    int at = line.indexOf(marker);
                    if (at < 0) {
                        return false;
                    }
                    int end = at + marker.length();
                    return end < line.length() && (line.charAt(end) == ',' || line.charAt(end) == ']');
                })
                .collect(Collectors.toList());
    }
}
