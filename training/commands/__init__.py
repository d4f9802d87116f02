"""Subcommand modules of `avt` for training (each: `add_arguments(parser)`, `run(args) -> int`)."""
