package dev.corelog.spring;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.stereotype.Service;

/**
 * The catalog service: consumes the orders and takes the ordered units out of stock. An order
 * with a quantity that is not positive is rejected by throwing, so the container's error
 * handler retries it and then sends it to the dead-letter topic.
 *
 * <p>It also counts how often each order was applied and each rejected order was tried, so the
 * tests can tell "exactly once" from "at least once" and see the error handler's retries.
 */
@Service
public class CatalogService {

    /** The listener container's id, for {@code KafkaListenerEndpointRegistry}. */
    public static final String LISTENER_ID = "catalog";

    private final StockRepository stock;
    private final Map<String, Integer> timesApplied = new ConcurrentHashMap<>();
    private final Map<String, Integer> timesRejected = new ConcurrentHashMap<>();

    public CatalogService(StockRepository stock) {
        this.stock = stock;
    }

    @KafkaListener(id = LISTENER_ID, topics = "${catalog.topic}", groupId = "${catalog.group}")
    public void onOrder(OrderDto order) {
        if (order.quantity() <= 0) {
            timesRejected.merge(order.orderId(), 1, Integer::sum);
            throw new IllegalArgumentException("order " + order.orderId()
                    + ": quantity must be positive, got " + order.quantity());
        }
        stock.decrement(order.productId(), order.quantity());
        timesApplied.merge(order.orderId(), 1, Integer::sum);
    }

    /** How many times the order was applied to the stock (0 if never). */
    public int timesApplied(String orderId) {
        return timesApplied.getOrDefault(orderId, 0);
    }

    /** How many times the listener was handed the order and rejected it (0 if never). */
    public int timesRejected(String orderId) {
        return timesRejected.getOrDefault(orderId, 0);
    }

    /** Every order applied so far, with its count. */
    public Map<String, Integer> appliedOrders() {
        return Map.copyOf(timesApplied);
    }
}
