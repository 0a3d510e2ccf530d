"""Billing: the ledger and invoices."""
