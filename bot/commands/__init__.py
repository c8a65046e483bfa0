"""Subcommands of ``cnrbot``: each module defines ``register(subparsers)``, adding the
subcommand of its own name; each subparser sets ``func`` (taking the parsed args, returning
the exit code). A module is imported only when its subcommand runs; its one-line summary is
listed in :data:`bot.cli.COMMANDS`."""
