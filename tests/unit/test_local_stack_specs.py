"""The local stack's server command lines (foresight.cli.local_stack)."""

from __future__ import annotations

from pathlib import Path

from foresight.cli.local_stack.stack import StackPorts, service_specs


def test_the_stack_pushgateway_keeps_its_groups_under_the_stack_not_in_the_machine_wide_default(
    tmp_path: Path,
) -> None:
    binaries = {name: name for name in ("prometheus-node-exporter", "prometheus-pushgateway", "tansu",
                                        "moto_server", "prometheus")}
    ports = StackPorts(**{name: 10000 + i for i, name in enumerate(StackPorts.__dataclass_fields__)})
    (pushgateway,) = [spec for spec in service_specs(binaries, ports, tmp_path) if spec.name == "pushgateway"]
    assert f"--persistence.file={tmp_path / 'pushgateway.data'}" in pushgateway.args
