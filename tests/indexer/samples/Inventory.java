package com.example.inventory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import com.example.inventory.model.Item;

/**
 * Keeps track of stock levels.
 */
public class Inventory implements Iterable<Item> {
    private final Map<String, Item> items = new HashMap<>();
    private int version;

    public Inventory() {
        this.version = 0;
    }

    public Inventory(List<Item> initial) {
        this();
        for (Item item : initial) {
            add(item);
        }
    }

    /** Add or replace an item. */
    public void add(Item item) {
        items.put(item.getSku(), item);
        version++;
    }

    public Optional<Item> find(String sku) {
        return Optional.ofNullable(items.get(sku));
    }

    @Override
    public java.util.Iterator<Item> iterator() {
        return new ArrayList<>(items.values()).iterator();
    }

    @Deprecated
    public synchronized <T extends Comparable<T>> List<Item> sortedBy(
            java.util.function.Function<Item, T> key) {
        List<Item> out = new ArrayList<>(items.values());
        out.sort((a, b) -> key.apply(a).compareTo(key.apply(b)));
        return out;
    }

    public int getVersion() {
        return version;
    }

    static class Snapshot {
        final int version;

        Snapshot(int version) {
            this.version = version;
        }

        int age(int current) {
            return current - version;
        }
    }

    public interface Listener {
        void onChange(Item item);

        default void onClear() {
        }
    }

    public enum Level {
        LOW, NORMAL, HIGH;

        public boolean isCritical() {
            return this == LOW;
        }
    }

    public record Entry(String sku, int quantity) {
        public Entry {
            if (quantity < 0) throw new IllegalArgumentException("negative");
        }

        public boolean isEmpty() {
            return quantity == 0;
        }
    }
}

interface Auditable {
    String audit();
}

@interface Tracked {
    String value() default "";
}
