"""The `channelcoder` command line: `main.py` parses and runs; each `cmd_*.py` module is one
subcommand beside `run`, registered with `register(subparsers)`."""
