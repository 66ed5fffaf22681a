"""Data contracts for telemetry batches (transitional: the module is being split by concern)."""

from foresight.contracts.suites import (
    CheckResult,
    ContractResult,
    ContractViolation,
    SourceContract,
    check_telemetry,
    read_quarantine,
    require_passed,
    write_quarantine,
)

__all__ = [
    "CheckResult",
    "ContractResult",
    "ContractViolation",
    "SourceContract",
    "check_telemetry",
    "read_quarantine",
    "require_passed",
    "write_quarantine",
]
