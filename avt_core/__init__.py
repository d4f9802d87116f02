"""The shared core of every `avt` command: errors, option declarations, run configs, signals, storage
and the command line itself. Imports nothing from the other avt packages except through the CLI's command table."""
