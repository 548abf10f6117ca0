"""`python -m medsight` runs the CLI."""

from medsight.cli.main import main

# guarded: worker processes are spawned, and a spawned child imports this module again
if __name__ == "__main__":
    main()
