package dev.corelog.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.kafka.config.KafkaListenerEndpointRegistry;
import org.springframework.kafka.core.KafkaAdmin;
import org.springframework.kafka.listener.MessageListenerContainer;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.kafka.support.SendResult;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import tools.jackson.databind.json.JsonMapper;

/**
 * The order service and the catalog service against one broker: orders placed with the
 * KafkaTemplate reach the @KafkaListener and change the stock exactly once, also across a
 * stop and restart of the listener container, and a poison order (rejected by the listener, or
 * not JSON at all) ends up in the dead-letter topic while the orders after it go through.
 *
 * <p>Each test uses its own products and order ids, so the counts of one never depend on
 * another's; the order only makes the log read as a story.
 */
@SpringBootTest
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class OrderCatalogTest {

    /** Makes the topic and group names unique, so reruns against one broker never collide. */
    private static final String RUN_ID = Long.toString(System.currentTimeMillis(), 36)
            + "-" + Integer.toString(ThreadLocalRandom.current().nextInt(1 << 20), 36);
    /** How long any expectation on the asynchronous listener may take to come true. */
    private static final Duration AWAIT = Duration.ofSeconds(60);

    @DynamicPropertySource
    static void kafkaProperties(DynamicPropertyRegistry registry) {
        registry.add("spring.kafka.bootstrap-servers", OrderCatalogTest::bootstrap);
        registry.add("catalog.topic", () -> "example-catalog-topic-" + RUN_ID);
        registry.add("catalog.group", () -> "catalog-service-" + RUN_ID);
    }

    /** The system property CORELOG_BOOTSTRAP, else the variable, else 127.0.0.1:9092. */
    static String bootstrap() {
        for (String value : new String[] {System.getProperty("CORELOG_BOOTSTRAP"),
                System.getenv("CORELOG_BOOTSTRAP")}) {
            if (value != null && !value.isBlank()) {
                return value.trim();
            }
        }
        return "127.0.0.1:9092";
    }

    @Autowired
    private OrderService orders;
    @Autowired
    private CatalogService catalog;
    @Autowired
    private StockRepository stock;
    @Autowired
    private KafkaListenerEndpointRegistry listeners;
    @Autowired
    private KafkaAdmin kafkaAdmin;
    @Value("${catalog.topic}")
    private String topic;
    @Value("${catalog.group}")
    private String group;

    @Test
    @Order(1)
    void kafkaAdminCreatedTheTopicsWithThreePartitions() {
        String deadLetterTopic = topic + CatalogApplication.DEAD_LETTER_SUFFIX;
        Map<String, TopicDescription> topics = kafkaAdmin.describeTopics(topic, deadLetterTopic);
        assertThat(topics.get(topic).partitions()).hasSize(CatalogApplication.PARTITIONS);
        assertThat(topics.get(deadLetterTopic).partitions())
                .hasSize(CatalogApplication.PARTITIONS);
    }

    @Test
    @Order(2)
    void ordersTakeTheirUnitsOutOfStock() throws Exception {
        List<String> products = products("stock", 3);
        products.forEach(product -> stock.restock(product, 1_000));
        List<OrderDto> placed = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            placed.add(new OrderDto(orderId("stock", i), products.get(i % 3), i + 1));
        }
        placeAll(placed);

        Map<String, Integer> expected = expectedStock(products, 1_000, placed);
        await().atMost(AWAIT).untilAsserted(() -> assertThat(stockOf(products))
                .isEqualTo(expected));
        placed.forEach(order -> assertThat(catalog.timesApplied(order.orderId()))
                .as("order %s applied once", order.orderId()).isEqualTo(1));
    }

    @Test
    @Order(3)
    void listenerResumesFromCommittedOffsetsAfterARestart() throws Exception {
        List<String> products = products("restart", 3);
        products.forEach(product -> stock.restock(product, 1_000));
        List<OrderDto> before = IntStream.range(0, 12)
                .mapToObj(i -> new OrderDto(orderId("before", i), products.get(i % 3), 1))
                .toList();
        placeAll(before);
        await().atMost(AWAIT).until(() -> before.stream()
                .allMatch(order -> catalog.timesApplied(order.orderId()) == 1));

        MessageListenerContainer container =
                listeners.getListenerContainer(CatalogService.LISTENER_ID);
        assertThat(container).isNotNull();
        container.stop();
        assertThat(container.isRunning()).isFalse();

        List<OrderDto> whileStopped = IntStream.range(0, 18)
                .mapToObj(i -> new OrderDto(orderId("stopped", i), products.get(i % 3), 2))
                .toList();
        placeAll(whileStopped);
        // Acknowledged by the broker, and nobody is consuming.
        whileStopped.forEach(order -> assertThat(catalog.timesApplied(order.orderId()))
                .isZero());

        container.start();
        awaitEachConsumerOwnsOnePartition();
        List<OrderDto> all = new ArrayList<>(before);
        all.addAll(whileStopped);
        Map<String, Integer> expected = expectedStock(products, 1_000, all);
        await().atMost(AWAIT).untilAsserted(() -> assertThat(stockOf(products))
                .isEqualTo(expected));
        // Exactly once: none missing (a restart from "latest") and none twice (from "earliest"
        // or from a commit that never landed).
        Map<String, Integer> applied = catalog.appliedOrders();
        all.forEach(order -> assertThat(applied.get(order.orderId()))
                .as("order %s applied once", order.orderId()).isEqualTo(1));

        // And the group's committed offsets reach the end of every partition.
        try (Admin admin = Admin.create(kafkaAdmin.getConfigurationProperties())) {
            await().atMost(AWAIT).untilAsserted(() -> {
                Map<TopicPartition, Long> ends = endOffsets(admin, topic);
                Map<TopicPartition, OffsetAndMetadata> committed = admin
                        .listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
                Map<TopicPartition, Long> committedOffsets = committed.entrySet().stream()
                        .filter(entry -> entry.getKey().topic().equals(topic))
                        .collect(Collectors.toMap(Map.Entry::getKey,
                                entry -> entry.getValue().offset()));
                assertThat(committedOffsets).isEqualTo(ends);
            });
        }
    }

    @Test
    @Order(4)
    void poisonOrdersGoToTheDeadLetterTopicAndTheOrdersAfterThemGoThrough() throws Exception {
        // A rebalance while the poison order is retried would start its count afresh on
        // another consumer: the group settles first.
        awaitEachConsumerOwnsOnePartition();
        // One product, one key: every record below lands on one partition, in this order.
        String product = products("poison", 1).get(0);
        stock.restock(product, 100);
        OrderDto first = new OrderDto(orderId("good", 1), product, 1);
        OrderDto rejected = new OrderDto(orderId("negative", 1), product, -5);
        OrderDto second = new OrderDto(orderId("good", 2), product, 2);
        byte[] notJson = ("{\"orderId\": \"" + orderId("garbled", 1) + "\", quantity: ")
                .getBytes(StandardCharsets.UTF_8);
        OrderDto third = new OrderDto(orderId("good", 3), product, 3);

        orders.placeOrder(first).get();
        SendResult<String, OrderDto> rejectedSent = orders.placeOrder(rejected).get();
        orders.placeOrder(second).get();
        RecordMetadata garbledSent = sendRaw(product, notJson);
        orders.placeOrder(third).get();

        await().atMost(AWAIT).untilAsserted(() -> assertThat(stock.unitsInStock(product))
                .isEqualTo(100 - 1 - 2 - 3));
        for (OrderDto good : List.of(first, second, third)) {
            assertThat(catalog.timesApplied(good.orderId())).isEqualTo(1);
        }
        assertThat(catalog.timesApplied(rejected.orderId())).isZero();
        // The first try and the FixedBackOff's retries, each after a seek back to the record.
        assertThat(catalog.timesRejected(rejected.orderId()))
                .isEqualTo(1 + (int) CatalogApplication.RETRIES);

        String deadLetterTopic = topic + CatalogApplication.DEAD_LETTER_SUFFIX;
        List<ConsumerRecord<String, byte[]>> deadLetters = readAll(deadLetterTopic, 2);
        assertThat(deadLetters).hasSize(2);

        ConsumerRecord<String, byte[]> rejectedLetter = deadLetters.get(0);
        RecordMetadata rejectedMetadata = rejectedSent.getRecordMetadata();
        assertThat(rejectedLetter.key()).isEqualTo(product);
        assertThat(rejectedLetter.partition()).isEqualTo(rejectedMetadata.partition());
        assertThat(JsonMapper.builder().build().readValue(rejectedLetter.value(), OrderDto.class))
                .isEqualTo(rejected);
        assertOriginHeaders(rejectedLetter, rejectedMetadata);
        assertThat(header(rejectedLetter, KafkaHeaders.DLT_EXCEPTION_FQCN))
                .isEqualTo("org.springframework.kafka.listener.ListenerExecutionFailedException");
        assertThat(header(rejectedLetter, KafkaHeaders.DLT_EXCEPTION_CAUSE_FQCN))
                .isEqualTo(IllegalArgumentException.class.getName());
        assertThat(header(rejectedLetter, KafkaHeaders.DLT_EXCEPTION_MESSAGE))
                .contains("order " + rejected.orderId() + ": quantity must be positive, got -5");
        assertThat(header(rejectedLetter, KafkaHeaders.DLT_EXCEPTION_STACKTRACE))
                .contains("CatalogService.onOrder");

        ConsumerRecord<String, byte[]> garbledLetter = deadLetters.get(1);
        assertThat(garbledLetter.key()).isEqualTo(product);
        assertThat(garbledLetter.partition()).isEqualTo(garbledSent.partition());
        // The raw bytes, as they were sent: the byte-array template published them untouched.
        assertThat(garbledLetter.value()).isEqualTo(notJson);
        assertOriginHeaders(garbledLetter, garbledSent);
        assertThat(header(garbledLetter, KafkaHeaders.DLT_EXCEPTION_FQCN))
                .isEqualTo("org.springframework.kafka.support.serializer.DeserializationException");
        assertThat(header(garbledLetter, KafkaHeaders.DLT_EXCEPTION_MESSAGE))
                .startsWith("failed to deserialize");
    }

    /**
     * Waits until the group has settled with the container's 3 consumers (the listener's
     * concurrency) owning one partition each: all of them joined and synced the same
     * generation, and the range assignor gave each its share.
     */
    private void awaitEachConsumerOwnsOnePartition() {
        MessageListenerContainer container =
                listeners.getListenerContainer(CatalogService.LISTENER_ID);
        await().atMost(AWAIT).untilAsserted(() -> {
            Map<String, Collection<TopicPartition>> assignments =
                    container.getAssignmentsByClientId();
            assertThat(assignments).isNotNull();
            assertThat(assignments.values().stream().map(Collection::size).toList())
                    .as("partitions per consumer: %s", assignments)
                    .containsExactly(1, 1, 1);
        });
    }

    /** Where the dead letter came from, and which group gave up on it. */
    private void assertOriginHeaders(ConsumerRecord<String, byte[]> letter, RecordMetadata origin) {
        assertThat(header(letter, KafkaHeaders.DLT_ORIGINAL_TOPIC)).isEqualTo(topic);
        assertThat(ByteBuffer.wrap(lastHeader(letter, KafkaHeaders.DLT_ORIGINAL_PARTITION))
                .getInt()).isEqualTo(origin.partition());
        assertThat(ByteBuffer.wrap(lastHeader(letter, KafkaHeaders.DLT_ORIGINAL_OFFSET))
                .getLong()).isEqualTo(origin.offset());
        assertThat(ByteBuffer.wrap(lastHeader(letter, KafkaHeaders.DLT_ORIGINAL_TIMESTAMP))
                .getLong()).isEqualTo(origin.timestamp());
        assertThat(header(letter, KafkaHeaders.DLT_ORIGINAL_TIMESTAMP_TYPE))
                .isEqualTo("CreateTime");
        assertThat(header(letter, KafkaHeaders.DLT_ORIGINAL_CONSUMER_GROUP)).isEqualTo(group);
    }

    private static String header(ConsumerRecord<String, byte[]> record, String name) {
        return new String(lastHeader(record, name), StandardCharsets.UTF_8);
    }

    private static byte[] lastHeader(ConsumerRecord<String, byte[]> record, String name) {
        Header header = record.headers().lastHeader(name);
        assertThat(header).as("header %s on %s", name, record).isNotNull();
        return header.value();
    }

    /** Places every order and waits for the broker's acknowledgements. */
    private void placeAll(List<OrderDto> placed) throws Exception {
        List<CompletableFuture<?>> sent = new ArrayList<>();
        placed.forEach(order -> sent.add(orders.placeOrder(order)));
        for (CompletableFuture<?> future : sent) {
            future.get();
        }
    }

    /** A record that is not JSON, sent with a plain producer as a misbehaving service might. */
    private RecordMetadata sendRaw(String key, byte[] value) throws Exception {
        Properties config = new Properties();
        config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(config,
                new StringSerializer(), new ByteArraySerializer())) {
            return producer.send(new ProducerRecord<>(topic, key, value)).get();
        }
    }

    /** The first {@code expected} records of the topic, read with a plain consumer, in offset order. */
    private List<ConsumerRecord<String, byte[]>> readAll(String topicName, int expected) {
        Properties config = new Properties();
        config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        List<ConsumerRecord<String, byte[]>> records = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(config,
                new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> partitions = consumer.partitionsFor(topicName).stream()
                    .map(info -> new TopicPartition(topicName, info.partition()))
                    .toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            long deadline = System.nanoTime() + AWAIT.toNanos();
            while (records.size() < expected && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(500)).forEach(records::add);
            }
        }
        records.sort((a, b) -> Long.compare(a.offset(), b.offset()));
        return records;
    }

    private static Map<TopicPartition, Long> endOffsets(Admin admin, String topicName)
            throws Exception {
        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        for (int partition = 0; partition < CatalogApplication.PARTITIONS; partition++) {
            latest.put(new TopicPartition(topicName, partition), OffsetSpec.latest());
        }
        return admin.listOffsets(latest).all().get().entrySet().stream()
                .collect(Collectors.toMap(Map.Entry::getKey, entry -> entry.getValue().offset()));
    }

    private Map<String, Integer> stockOf(List<String> products) {
        Map<String, Integer> units = new HashMap<>();
        products.forEach(product -> units.put(product, stock.unitsInStock(product)));
        return units;
    }

    private static Map<String, Integer> expectedStock(List<String> products, int initial,
            List<OrderDto> placed) {
        Map<String, Integer> units = new HashMap<>();
        products.forEach(product -> units.put(product, initial));
        placed.forEach(order -> units.merge(order.productId(), -order.quantity(), Integer::sum));
        return units;
    }

    private static List<String> products(String test, int count) {
        return IntStream.range(0, count).mapToObj(i -> test + "-product-" + i).toList();
    }

    private static String orderId(String kind, int number) {
        return kind + "-" + number + "-" + UUID.randomUUID();
    }
}
