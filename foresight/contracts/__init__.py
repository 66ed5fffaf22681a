"""Data contracts for incoming telemetry: clean what can be cleaned, quarantine the rest, judge the batch.

- :mod:`~foresight.contracts.check`: ``check_telemetry``, the entry point (the three stages).
- :mod:`~foresight.contracts.parsing`: raw columns to typed ``unique_id, ds, y``, parse reasons.
- :mod:`~foresight.contracts.suites`: limits, ``SourceContract``, the Great Expectations suites
  and engine (``warm_up``).
- :mod:`~foresight.contracts.results`: what is quarantined and why, the batch checks, and the
  verdict (``ContractResult``, ``require_passed``, ``ContractViolation``).
- :mod:`~foresight.contracts.reasons`: the stable reason strings (``Reason``).

Quarantined rows are stored and read by :mod:`foresight.quarantine`.
"""
