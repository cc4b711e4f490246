"""The ledger: the only code that writes stock. See ledger/service.py."""
