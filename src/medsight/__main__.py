"""`python -m medsight` runs the CLI."""

from medsight.cli.main import main

main()
