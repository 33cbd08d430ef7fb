"""The ``ecrm`` command line: thin subcommands, each parsing options and calling one stage function."""
