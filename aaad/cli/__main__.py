"""``python -m aaad.cli`` runs the CLI, as ``python -m aaad`` does."""

from aaad.cli import main

main()
