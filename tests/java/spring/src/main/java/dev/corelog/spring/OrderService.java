package dev.corelog.spring;

import java.util.concurrent.CompletableFuture;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.support.SendResult;
import org.springframework.stereotype.Service;

/** The order service: publishes each order to the catalog topic, keyed by product id. */
@Service
public class OrderService {

    private final KafkaTemplate<String, OrderDto> kafkaTemplate;
    private final String topic;

    public OrderService(KafkaTemplate<String, OrderDto> kafkaTemplate,
            @Value("${catalog.topic}") String topic) {
        this.kafkaTemplate = kafkaTemplate;
        this.topic = topic;
    }

    /** Sends the order; the future completes once the broker acknowledged it (acks=all). */
    public CompletableFuture<SendResult<String, OrderDto>> placeOrder(OrderDto order) {
        return kafkaTemplate.send(topic, order.productId(), order);
    }
}
