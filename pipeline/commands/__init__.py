"""Commands beyond the core ones; each module has ``register(subparsers)``."""
