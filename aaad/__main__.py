"""``python -m aaad`` runs the CLI."""

from aaad.cli import main

main()
