"""Discounts and taxes applied at checkout."""

from .models import Cart

VAT_RATE = 0.2


def apply_discount(amount: float, percent: float) -> float:
    """Reduce ``amount`` by ``percent`` (0-100)."""
    return amount * (1 - percent / 100)


def checkout_total(cart: Cart, discount_percent: float = 0.0) -> float:
    """The amount to pay: cart total, less the discount, plus VAT."""
    discounted = apply_discount(cart.total(), discount_percent)
    return round(discounted * (1 + VAT_RATE), 2)
