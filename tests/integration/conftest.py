"""Integration fixtures shared by the whole session (each broker start costs seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.kafka import Broker, tansu_broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One memory-storage tansu broker for the session; tests use their own topics and groups."""
    with tansu_broker(tmp_path_factory.mktemp("tansu-session") / "tansu.log") as running:
        yield running
