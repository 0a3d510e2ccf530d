"""Payments between customers."""

from billing.ledger import open_ledger


def pay(payer: str, payee: str, cents: int) -> None:
    """Charge ``payer`` and credit ``payee``."""
    ledger = open_ledger()
    ledger.
    print(f"paid {cents} cents")
