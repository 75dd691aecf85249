package dev.corelog.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.apache.kafka.clients.NodeApiVersions;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.ApiVersionsResponseData.ApiVersion;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.requests.ApiVersionsRequest;
import org.apache.kafka.common.requests.ApiVersionsResponse;
import org.apache.kafka.common.requests.RequestHeader;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * Which version of each API the Java client negotiates with the broker, and which versions the
 * rest of the suite really sent. Runs last (highest {@code @Order}) so the client log holds
 * every request the other test classes made.
 *
 * <p>The broker's ranges come from an ApiVersions request this test sends itself (with the
 * client's own serializer); the negotiated version is what the client computes from them
 * ({@link NodeApiVersions#latestUsableVersion}: the highest version both sides support). The
 * versions really used come from NetworkClient's DEBUG lines ("Sending FETCH request with
 * header RequestHeader(apiKey=FETCH, apiVersion=17, ...)"). The table goes to
 * {@code target/api-versions.txt} and to stdout.
 *
 * <p>Fails when a request went out for an API the broker does not offer, when any client hit
 * an UnsupportedVersionException (the client found an API it wanted missing, as the Admin
 * client does when it tries DescribeTopicPartitions or ConsumerGroupDescribe first and falls
 * back; only KIP-714 telemetry, optional in Kafka too, is exempt), or when a request went out
 * below the negotiated version (an unexpected downgrade). A broker whose newest version of an
 * API is below the client's is noted in the table, not failed: that is a negotiation, not an
 * error.
 */
@Order(100)
class ApiVersionsTest {
    private static final Pattern SENT = Pattern.compile("Sending (\\w+) request with header RequestHeader\\(apiKey=(\\w+), apiVersion=(\\d+)");

    /**
     * APIs a client legitimately sends below the negotiated version, with the reason.
     */
    private static final Map<ApiKeys, String> SENT_BELOW_NEGOTIATED = Map.of(
            // Sent at the client's newest version before the broker's range is known, and
            // retried lower when refused (KIP-511).
            ApiKeys.API_VERSIONS, "sent before negotiation",
            // v10 names topics by id only (KIP-848); requests that carry topic names (the classic
            // consumer's, the Admin client's) are capped at v9 by their builders. Kafka 4.4
            // itself is sent v9 by this suite.
            ApiKeys.OFFSET_COMMIT, "v10 needs topic ids",
            ApiKeys.OFFSET_FETCH, "v10 needs topic ids",
            // v4+ batches transactions for brokers' verification (KIP-890 part 1): a client
            // sends v3 at most (AddPartitionsToTxnRequest.Builder.forClient), and none at all
            // with transaction version 2, as against Kafka 4.4.
            ApiKeys.ADD_PARTITIONS_TO_TXN, "v4+ is broker-to-broker");

    /**
     * APIs the client probes and quietly does without: KIP-714 client telemetry, which a Kafka
     * broker only offers when a telemetry plugin is configured (ApiVersionsResponse.filterApis
     * drops both keys otherwise), so a default Kafka answers UnsupportedVersion here too.
     */
    private static final Set<ApiKeys> OPTIONAL_APIS = EnumSet.of(ApiKeys.GET_TELEMETRY_SUBSCRIPTIONS, ApiKeys.PUSH_TELEMETRY);

    /**
     * The newest Produce version a transactional producer sends when the broker does not
     * finalize {@code transaction.version} 2 or higher: v12 adds partitions to a transaction
     * implicitly (KIP-890 part 2), so the client caps Produce at v11 for transaction version 1.
     */
    private static final short PRODUCE_BEFORE_TRANSACTION_V2 = 11;

    /** NetworkClient's "Version mismatch when attempting to send ..." cause. */
    private static final Pattern NOT_SUPPORTED = Pattern.compile("The node does not support (\\w+)");

    @Test
    void everyApiTheClientUsesIsNegotiatedAtTheBrokersNewestCommonVersion() throws Exception {
        ApiVersionsResponseData broker = apiVersions();
        assertEquals(Errors.NONE.code(), broker.errorCode(), "ApiVersions error code");
        NodeApiVersions negotiated = new NodeApiVersions(broker.apiKeys(), broker.supportedFeatures(),
                broker.finalizedFeatures(), broker.finalizedFeaturesEpoch());

        exerciseClients();
        Map<ApiKeys, TreeSet<Short>> used = usedVersions(line -> true);
        var transactionVersion = broker.finalizedFeatures().find("transaction.version");
        boolean transactionV2 = transactionVersion != null && transactionVersion.maxVersionLevel() >= 2;
        // Without transaction version 2, transactional producers' Produce requests are judged
        // apart, against the v11 cap.
        Map<ApiKeys, TreeSet<Short>> usedByTransactionalProducers = usedVersions(line -> line.contains("transactionalId="));
        Map<ApiKeys, TreeSet<Short>> usedOutsideTransactions = usedVersions(line -> !line.contains("transactionalId="));
        Map<String, List<String>> unsupported = unsupportedVersionHits();

        StringBuilder table = new StringBuilder();
        table.append(row("API (key)", "client", "broker", "negotiated", "used", "note"));
        List<String> problems = new ArrayList<>();
        for (ApiKeys api : ApiKeys.clientApis()) {
            ApiVersion offered = broker.apiKeys().find(api.id);
            TreeSet<Short> usedVersions = used.getOrDefault(api, new TreeSet<>());
            short clientLatest = api.latestVersion(false);
            String brokerRange = offered == null ? "-" : offered.minVersion() + "-" + offered.maxVersion();
            String agreed = "-";
            List<String> notes = new ArrayList<>();
            if (offered != null) {
                try {
                    agreed = Short.toString(negotiated.latestUsableVersion(api));
                } catch (RuntimeException e) {
                    agreed = "none";
                    notes.add("no common version");
                }
                if (offered.maxVersion() < clientLatest) {
                    notes.add("broker max below client's v" + clientLatest);
                }
            }
            if (!usedVersions.isEmpty()) {
                if (offered == null) {
                    problems.add(api.name + " was sent but the broker does not offer it");
                    notes.add("SENT, NOT OFFERED");
                } else if (agreed.equals("none")) {
                    problems.add(api.name + " was sent but has no version in common with the broker (" + brokerRange + ")");
                } else if (api == ApiKeys.PRODUCE && !transactionV2
                        && usedByTransactionalProducers.containsKey(api)) {
                    short capped = (short) Math.min(Short.parseShort(agreed), PRODUCE_BEFORE_TRANSACTION_V2);
                    notes.add("transactional producers capped at v" + capped + ": no transaction.version 2 (KIP-890)");
                    if (usedByTransactionalProducers.get(api).first() < capped) {
                        problems.add(api.name + " was sent by a transactional producer at v"
                                + usedByTransactionalProducers.get(api).first() + ", below v" + capped);
                    }
                    TreeSet<Short> others = usedOutsideTransactions.get(api);
                    if (others != null && others.first() < Short.parseShort(agreed)) {
                        problems.add(api.name + " was sent at v" + others.first() + ", below the negotiated v" + agreed);
                        notes.add("DOWNGRADED");
                    }
                } else if (usedVersions.first() < Short.parseShort(agreed)) {
                    if (SENT_BELOW_NEGOTIATED.containsKey(api)) {
                        notes.add("below negotiated: " + SENT_BELOW_NEGOTIATED.get(api));
                    } else {
                        problems.add(api.name + " was sent at v" + usedVersions.first() + ", below the negotiated v" + agreed);
                        notes.add("DOWNGRADED");
                    }
                }
            }
            List<String> hits = unsupported.get(api.name());
            if (hits != null) {
                notes.add("UnsupportedVersionException x" + hits.size()
                        + (OPTIONAL_APIS.contains(api) ? " (expected: optional)" : ""));
                if (!OPTIONAL_APIS.contains(api)) {
                    problems.add("the clients hit UnsupportedVersionException for " + api.name + " " + hits.size()
                            + " times (the broker does not offer it; Kafka does), first:\n    " + hits.get(0));
                }
            }
            table.append(row(api.name + " (" + api.id + ")", api.oldestVersion() + "-" + clientLatest, brokerRange, agreed,
                    join(usedVersions), String.join("; ", notes)));
        }
        for (ApiVersion offered : broker.apiKeys()) {
            if (!ApiKeys.hasId(offered.apiKey()) || !ApiKeys.clientApis().contains(ApiKeys.forId(offered.apiKey()))) {
                table.append(row("(not a client API) " + offered.apiKey(), "-",
                        offered.minVersion() + "-" + offered.maxVersion(), "", "", ""));
            }
        }
        unsupported.keySet().stream()
                .filter(name -> Arrays.stream(ApiKeys.values()).noneMatch(api -> api.name().equals(name)))
                .forEach(name -> problems.add("UnsupportedVersionException: " + unsupported.get(name).get(0)));
        table.append(String.format("%nbroker: %s; client: kafka-clients %s%n", Corelog.bootstrap(),
                org.apache.kafka.common.utils.internals.AppInfoParser.getVersion()));

        String file = System.getProperty("corelog.apiVersionsFile", "target/api-versions.txt");
        Files.writeString(Path.of(file), table.toString(), StandardCharsets.UTF_8);
        System.out.println("Negotiated API versions (also in " + file + "):\n" + table);

        assertTrue(used.containsKey(ApiKeys.METADATA) && used.containsKey(ApiKeys.API_VERSIONS),
                "the client log shows no requests: is NetworkClient logging at DEBUG to " + ClientLog.path() + "?");
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    /**
     * A producer, a consumer and an admin client each do one thing, so the log holds their
     * requests even when this class runs alone ({@code -Dtest=ApiVersionsTest}).
     */
    private static void exerciseClients() throws Exception {
        String topic = Corelog.unique("api-versions");
        try (Admin admin = Corelog.admin()) {
            Corelog.createTopic(admin, topic, 1, Map.of());
            Corelog.get(admin.describeCluster().clusterId());
        }
        TopicPartition partition = new TopicPartition(topic, 0);
        try (KafkaProducer<byte[], byte[]> producer = Corelog.producer()) {
            producer.send(new ProducerRecord<>(topic, 0, null, Corelog.bytes("v"))).get();
        }
        try (KafkaConsumer<byte[], byte[]> consumer = Corelog.consumer(Corelog.unique("api-versions"), null, Map.of())) {
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            Corelog.pollExactly(consumer, 1);
        }
    }

    /**
     * API name to the client log lines that report an UnsupportedVersionException for it
     * ("?" when the line names no API).
     */
    private static Map<String, List<String>> unsupportedVersionHits() {
        Map<String, List<String>> hits = new TreeMap<>();
        for (String line : ClientLog.lines()) {
            if (!line.contains("UnsupportedVersionException")) {
                continue;
            }
            Matcher matcher = NOT_SUPPORTED.matcher(line);
            String api = matcher.find() ? matcher.group(1) : "?";
            hits.computeIfAbsent(api, k -> new ArrayList<>()).add(line.length() > 400 ? line.substring(0, 400) : line);
        }
        return hits;
    }

    private static String row(String api, String client, String broker, String negotiated, String used, String note) {
        return String.format("%-42s %-7s %-7s %-10s %-6s %s", api, client, broker, negotiated, used, note).stripTrailing()
                + "\n";
    }

    /**
     * API key to every version the suite's clients sent it at, from the client log lines that
     * pass {@code lines}.
     */
    private static Map<ApiKeys, TreeSet<Short>> usedVersions(java.util.function.Predicate<String> lines) {
        Map<ApiKeys, TreeSet<Short>> used = new TreeMap<>();
        for (String line : ClientLog.lines()) {
            if (!lines.test(line)) {
                continue;
            }
            Matcher matcher = SENT.matcher(line);
            if (matcher.find()) {
                ApiKeys api = ApiKeys.valueOf(matcher.group(2));
                used.computeIfAbsent(api, k -> new TreeSet<>()).add(Short.parseShort(matcher.group(3)));
            }
        }
        return used;
    }

    /**
     * One ApiVersions round trip on a fresh socket at the client's newest version, falling back
     * to the broker's newest when it answers UNSUPPORTED_VERSION (a v0-format response, KIP-511).
     */
    private static ApiVersionsResponseData apiVersions() throws IOException {
        ApiVersionsResponseData answer = apiVersions(ApiKeys.API_VERSIONS.latestVersion());
        if (answer.errorCode() == Errors.UNSUPPORTED_VERSION.code()) {
            ApiVersion range = answer.apiKeys().find(ApiKeys.API_VERSIONS.id);
            assertTrue(range != null, "an UNSUPPORTED_VERSION ApiVersions answer carries the broker's range");
            answer = apiVersions(range.maxVersion());
        }
        return answer;
    }

    private static ApiVersionsResponseData apiVersions(short version) throws IOException {
        String[] hostPort = Corelog.bootstrap().split(",")[0].trim().split(":");
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1])), 10_000);
            socket.setSoTimeout(10_000);
            ApiVersionsRequest request = new ApiVersionsRequest.Builder(
                    new ApiVersionsRequestData().setClientSoftwareName("corelog-java-suite").setClientSoftwareVersion("1.0"),
                    version, version).build(version);
            ByteBuffer frame = request.serializeWithHeader(new RequestHeader(ApiKeys.API_VERSIONS, version,
                    "corelog-api-versions", 1));
            DataOutputStream out = new DataOutputStream(socket.getOutputStream());
            out.writeInt(frame.remaining());
            out.write(frame.array(), frame.arrayOffset() + frame.position(), frame.remaining());
            out.flush();
            DataInputStream in = new DataInputStream(socket.getInputStream());
            byte[] body = new byte[in.readInt()];
            in.readFully(body);
            ByteBuffer response = ByteBuffer.wrap(body);
            assertEquals(1, response.getInt(), "correlation id");
            // The ApiVersions response header is always v0 (no tagged fields), so the client
            // can read an UNSUPPORTED_VERSION answer whatever version it asked for.
            return ApiVersionsResponse.parse(new ByteBufferAccessor(response), version).data();
        }
    }

    private static String join(TreeSet<Short> versions) {
        return versions.stream().map(String::valueOf).collect(Collectors.joining(","));
    }
}
