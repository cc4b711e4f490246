"""Ordered schema migrations. Each module `mNNNN_name.py` defines `up(conn)`; see ledger/migrate.py."""
