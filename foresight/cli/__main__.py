"""``python -m foresight.cli``: the ``foresight`` command."""

from foresight.cli import app

app()
