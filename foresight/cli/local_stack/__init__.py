"""The local development stack ``foresight stack`` runs (see :mod:`.stack`)."""
