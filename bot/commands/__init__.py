"""Subcommands of ``cnrbot``: each module defines ``register(subparsers)``; each subparser sets
``func`` (taking the parsed args, returning the exit code)."""
