"""Subcommands of the CLI beside `run`: one module each, with `register(subparsers)`."""
