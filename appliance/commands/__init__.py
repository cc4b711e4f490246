"""CLI command groups. Each module has `register(subparsers)` and handlers taking (args, ctx)."""
