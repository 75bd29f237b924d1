"""The command line for teams and ops: ``python -m cli --help``."""
