"""Checkout demo for the sample shop."""

from shop.models import Cart, Item
from shop.pricing import checkout_total


def build_demo_cart() -> Cart:
    cart = Cart()
    cart.add(Item("keyboard", 49.0))
    cart.add(Item("mouse", 19.5, quantity=2))
    return cart


def main() -> None:
    cart = build_demo_cart()
    total = 
    print(f"total to pay: {total}")


if __name__ == "__main__":
    main()
