package dev.corelog.spring;

/**
 * An order placed with the order service: {@code quantity} units of {@code productId}. It
 * travels as JSON (Spring Kafka's JacksonJsonSerializer) with the product id as record key,
 * so all orders of one product land on one partition, in the order they were placed.
 */
public record OrderDto(String orderId, String productId, int quantity) {
}
