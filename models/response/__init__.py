"""Automated response's pure logic (docs/response.md): which rule acts on an incident
(:mod:`.rules`), the guard rails (:mod:`.guards`), the steps of a decision (:mod:`.decisions`) and
the audit log's rows (:mod:`.audit`). No I/O: the executors live in ``connectors.sinks.response``
and the runner that wires them in ``response``."""
