package dev.corelog.spring;

import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.annotation.Bean;
import org.springframework.kafka.config.TopicBuilder;
import org.springframework.kafka.core.KafkaOperations;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.core.ProducerFactory;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.util.backoff.FixedBackOff;

/**
 * The order-service/catalog-service application in miniature. Spring Boot auto-configures the
 * KafkaTemplate, the listener container factory and KafkaAdmin from {@code spring.kafka.*};
 * this class adds the topics (created by KafkaAdmin at start-up) and the error handler, which
 * Boot puts on the auto-configured container factory.
 */
@SpringBootApplication
public class CatalogApplication {

    /** The catalog topic's partitions, and so its dead-letter topic's (see below). */
    public static final int PARTITIONS = 3;
    /** Retries of a failing record before it goes to the dead-letter topic. */
    public static final long RETRIES = 2;
    /** The wait between two tries of a failing record. */
    public static final long RETRY_INTERVAL_MS = 100;
    /** Spring Kafka 4's default dead-letter topic name is the topic's plus this suffix. */
    public static final String DEAD_LETTER_SUFFIX = "-dlt";

    public static void main(String[] args) {
        SpringApplication.run(CatalogApplication.class, args);
    }

    /** No replication factor given: the broker's default, as most Spring applications do. */
    @Bean
    NewTopic catalogTopic(@Value("${catalog.topic}") String topic) {
        return TopicBuilder.name(topic).partitions(PARTITIONS).build();
    }

    /**
     * The default destination resolver publishes a dead letter to the partition the record came
     * from, so the dead-letter topic needs at least as many partitions as the catalog topic.
     */
    @Bean
    NewTopic catalogDeadLetterTopic(@Value("${catalog.topic}") String topic) {
        return TopicBuilder.name(topic + DEAD_LETTER_SUFFIX).partitions(PARTITIONS).build();
    }

    /**
     * Retries a failing record {@link #RETRIES} times, then publishes it to the dead-letter
     * topic. A record the ErrorHandlingDeserializer could not read reaches the recoverer as its
     * raw bytes, which go out through a byte-array template; everything else (OrderDto) through
     * the JSON template. Both templates share Boot's producer configuration.
     */
    @Bean
    CommonErrorHandler errorHandler(ProducerFactory<String, Object> producerFactory) {
        ProducerFactory<String, Object> bytesProducerFactory = producerFactory
                .copyWithConfigurationOverride(Map.of(
                        ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class));
        Map<Class<?>, KafkaOperations<?, ?>> templates = new LinkedHashMap<>();
        templates.put(byte[].class, new KafkaTemplate<>(bytesProducerFactory));
        templates.put(Object.class, new KafkaTemplate<>(producerFactory));
        DeadLetterPublishingRecoverer recoverer = new DeadLetterPublishingRecoverer(templates);
        return new DefaultErrorHandler(recoverer, new FixedBackOff(RETRY_INTERVAL_MS, RETRIES));
    }
}
