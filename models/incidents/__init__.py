"""The incident pipeline: telemetry (or per-series anomaly scores) in, pages out.

- :mod:`.base`: the builder interface (:class:`~models.incidents.base.IncidentBuilder`), its
  inputs and output, the incident table's columns and identity, severity;
- :mod:`.pipeline`: :class:`~models.incidents.pipeline.IncidentPipeline`, what the train flow
  registers and gates and the detect flow pages with (a builder, its typed settings, the fitted
  detector and the page budget's calibration);
- :mod:`.settings`: the typed settings of both modes and of the pipeline;
- :mod:`.stream` (the step-by-step engine), :mod:`.replay` (a frame replayed through it) and
  :mod:`.stream_builder` (its builder), with :mod:`.surprise`, :mod:`.wire_latency`,
  :mod:`.share_units` (failed-request shares), :mod:`.call_graph` (systems, callers),
  :mod:`.category`, :mod:`.fault_types`, :mod:`.rca`, :mod:`.page_budget` and
  :mod:`.metric_vocabulary`;
- :mod:`.rollup`: the roll-up mode (per-series scores rolled up per service);
- :mod:`.baseline`: the robust z baselines' incidents (benchmarks only);
- :mod:`.evaluation`: event-wise figures of a pipeline's pages on a held-out split, per system
  (what the champion gate judges).
"""
