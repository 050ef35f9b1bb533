"""`python -m simdex ...` runs the `simdex` command."""

from .cli import cli

cli()
