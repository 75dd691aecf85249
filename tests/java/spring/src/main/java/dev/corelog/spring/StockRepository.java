package dev.corelog.spring;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.springframework.stereotype.Repository;

/**
 * The catalog's stock, in memory. The listener's consumer threads (one per group member)
 * update it concurrently, so every change is one atomic {@link ConcurrentHashMap#merge}.
 */
@Repository
public class StockRepository {

    private final Map<String, Integer> unitsInStock = new ConcurrentHashMap<>();

    public void restock(String productId, int units) {
        unitsInStock.put(productId, units);
    }

    public void decrement(String productId, int units) {
        unitsInStock.merge(productId, -units, Integer::sum);
    }

    /** The units in stock, or {@code null} for a product never stocked. */
    public Integer unitsInStock(String productId) {
        return unitsInStock.get(productId);
    }
}
