"""The stream processor (``foresight stream``): metric and log messages from Kafka scored and
aggregated as they arrive, state per partition checkpointed with its offsets (docs/stream.md).

Layer: between models/connectors and flows; it imports core, features, connectors and models.
"""
