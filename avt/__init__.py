"""The `avt` command line: one table of subcommands over the product's packages (``avt.cli``).

It sits above every other package (nothing imports it but the demo, which is handed the entry point), so the
import-graph test reads its command table like any import."""
