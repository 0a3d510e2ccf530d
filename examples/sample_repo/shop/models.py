"""Domain objects of the sample shop."""

from dataclasses import dataclass, field


@dataclass
class Item:
    """One product line in a cart."""

    name: str
    unit_price: float
    quantity: int = 1

    def subtotal(self) -> float:
        return self.unit_price * self.quantity


@dataclass
class Cart:
    """A shopping cart holding items."""

    items: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> None:
        self.items.append(item)

    def total(self) -> float:
        return sum(item.subtotal() for item in self.items)
