"""Automated response's edges (docs/response.md): the executors that act (:mod:`.autoscaling`,
:mod:`.webhook`, :mod:`.command`), the append-only audit log in the lake (:mod:`.audit_store`) and
the annotations of each step on the incident (:mod:`.annotations`: PagerDuty change events,
Grafana annotations). I/O only; what to do and whether it may run is ``models.response``'s."""
