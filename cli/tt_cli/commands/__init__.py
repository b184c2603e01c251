"""The `tt` command groups; each module's register(subparsers) adds its parsers (func=handler(ctx))."""
