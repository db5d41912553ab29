"""``python -m mlipflow``: the same as the ``mlipflow`` command."""

from mlipflow.cli import main

main()
