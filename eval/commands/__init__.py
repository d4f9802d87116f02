"""`avt evaluate` subcommand."""
