"""Double-entry ledger used by the payment services."""

from dataclasses import dataclass, field


@dataclass
class Ledger:
    """Accounts and their balances, in cents."""

    balances: dict[str, int] = field(default_factory=dict)

    def post_double_entry(self, debit_account: str, credit_account: str, cents: int) -> None:
        """Move ``cents`` from ``debit_account`` to ``credit_account``."""
        self.balances[debit_account] = self.balances.get(debit_account, 0) - cents
        self.balances[credit_account] = self.balances.get(credit_account, 0) + cents

    def balance_of(self, account: str) -> int:
        return self.balances.get(account, 0)


def open_ledger() -> Ledger:
    """The ledger of the current process."""
    return Ledger()
