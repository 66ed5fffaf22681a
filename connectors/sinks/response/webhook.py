"""Actions through a webhook: one JSON POST (restart, roll back the last deploy, open a ticket).

The body is :meth:`ActionRequest.body`; ``Idempotency-Key`` carries the decision id and
``Authorization: Bearer`` the configured token. A 2xx is success; anything else, a timeout or a
refused connection raises :class:`ResponseActionError` naming the webhook and the status. No
retries: a failed action is audited as ``failed`` and is not tried again by a later run (it may
have half-happened); a person looks at it.
"""

from __future__ import annotations

import requests

from connectors.sinks.response.request import ActionRequest, ResponseActionError
from foresight.redact import redact_url


class WebhookExecutor:
    """POSTs actions to ``url``."""

    def __init__(self, name: str, url: str, *, token: str | None = None, timeout: float = 10.0,
                 session: requests.Session | None = None) -> None:
        self.name, self.url, self.timeout = name, url, timeout
        self._token = token
        self._session = session or requests.Session()

    def __repr__(self) -> str:  # never show the token
        return f"WebhookExecutor({self.name!r}, {redact_url(self.url)!r})"

    def execute(self, request: ActionRequest) -> str:
        headers = {"Content-Type": "application/json", "Idempotency-Key": request.decision_id}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            answer = self._session.post(self.url, json=request.body(), headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ResponseActionError(f"webhook {self.name} ({redact_url(self.url)}): {type(exc).__name__}: "
                                      f"{exc}") from exc
        if not answer.ok:
            raise ResponseActionError(f"webhook {self.name} answered HTTP {answer.status_code}: "
                                      f"{' '.join(answer.text.split())[:200]}")
        return f"webhook {self.name} answered HTTP {answer.status_code}"
