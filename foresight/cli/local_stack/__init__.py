"""The local development stack ``foresight stack`` runs: Prometheus (+ node_exporter, pushgateway),
Kafka (tansu) and CloudWatch (moto) on loopback.

- :mod:`.stack`: :class:`~.stack.LocalStack`, start / status / stop under ``$FORESIGHT_HOME/stack``
- :mod:`.seeding`: the simulator's telemetry loaded into the three servers
- :mod:`.servers`: where each binary is, its command line and health check, Prometheus' config and
  the ``promtool`` backfill
- :mod:`.launcher`: start a server with a log, wait until it answers, stop its session; the
  integration tests start their servers with it too (``tests/support/servers.py``)
"""
