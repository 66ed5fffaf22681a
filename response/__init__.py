"""Automated response (docs/response.md): the runner that wires ``models.response``'s decisions and
guard rails to ``connectors.sinks.response``'s executors, audit log and annotations
(:mod:`.runner`), built from the settings (:mod:`.from_settings`). Called by the detect flow and the
stream processor on incident events."""
