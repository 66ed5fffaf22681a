"""Choosing the stream processor's Kafka client by name, and the confluent backend's settings as
librdkafka reads them (the behaviour against a broker: tests/integration/test_stream_client_kafka.py)."""

from __future__ import annotations

from typing import get_args

import confluent_kafka
import pytest
from pydantic import ValidationError

from connectors.sources.kafka.stream_client import (
    CLIENTS,
    UnknownClientError,
    open_consumer,
    open_producer,
    topic_options,
)
from connectors.sources.kafka.stream_consumer_confluent import consumer_config, producer_config
from foresight.settings import StreamConfig


def _options(**extra: object):
    return topic_options(["127.0.0.1:1", "[::1]:2"], "grp", "metrics", "logs", "dead", **extra)


def test_the_settings_offer_exactly_the_clients_there_are() -> None:
    assert CLIENTS == ("confluent", "kafka-python")
    assert get_args(StreamConfig.model_fields["client"].annotation) == CLIENTS
    with pytest.raises(ValidationError, match="client"):
        StreamConfig(client="librdkafka")


@pytest.mark.parametrize(
    "opener", [lambda: open_consumer("rdkafka", _options(), None), lambda: open_producer("x", _options())]
)  # type: ignore[arg-type]
def test_an_unknown_client_is_refused_with_the_choices(opener) -> None:
    with pytest.raises(UnknownClientError, match="choose one of confluent, kafka-python"):
        opener()


def test_the_confluent_consumer_never_commits_on_its_own_and_uses_the_range_assignor() -> None:
    config = consumer_config(_options(session_timeout_ms=6000, auto_offset_reset="latest"))
    assert config["bootstrap.servers"] == "127.0.0.1:1,[::1]:2"
    assert config["enable.auto.commit"] is False and config["enable.auto.offset.store"] is False
    assert config["partition.assignment.strategy"] == "range"
    assert (config["group.id"], config["auto.offset.reset"]) == ("grp", "latest")
    assert (config["session.timeout.ms"], config["heartbeat.interval.ms"]) == (6000, 2000)
    # librdkafka accepts every key and value (an unknown or invalid one raises here)
    confluent_kafka.Consumer(config).close()


def test_the_confluent_producer_waits_for_all_replicas_and_never_gives_up_locally() -> None:
    config = producer_config(_options())
    assert (config["acks"], config["message.timeout.ms"]) == ("all", 0)
    confluent_kafka.Producer(config).flush(0)


def test_sasl_and_ssl_options_map_to_librdkafka_names_with_the_secret_revealed_only_there() -> None:
    options = _options(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="s3cret",
        ssl_check_hostname=False,
    )
    config = consumer_config(options)
    assert config["security.protocol"] == "sasl_ssl"
    assert (config["sasl.mechanism"], config["sasl.username"], config["sasl.password"]) == (
        "SCRAM-SHA-512",
        "svc",
        "s3cret",
    )
    assert config["ssl.endpoint.identification.algorithm"] == "none"
    assert "s3cret" not in repr(options)
    confluent_kafka.Producer(producer_config(options)).flush(0)
