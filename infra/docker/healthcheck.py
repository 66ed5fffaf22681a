"""The image's HEALTHCHECK: is this container's server answering?

Each role serves its own endpoint; the container says which in ``FORESIGHT_HEALTH_URL``:

- the Prefect worker (``--with-healthcheck``): ``http://127.0.0.1:8080/health``
- the stream processor: ``http://127.0.0.1:9464/metrics``
- the MLflow server: ``http://127.0.0.1:5000/health``

Unset (a one-off command such as ``foresight run ...``), the check imports Foresight's flows, so
an image whose install is broken reports unhealthy. Exit 0 healthy, 1 not (Docker's contract).
Kubernetes ignores HEALTHCHECK and probes the same endpoints itself (infra/k8s/*.yaml).
Standard library only: it must answer in a second or two, whatever the container is doing.
"""

from __future__ import annotations

import importlib
import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5.0


def check(url: str | None) -> str | None:
    """None when healthy, else what is wrong."""
    if not url:
        try:
            importlib.import_module("foresight.settings")
            importlib.import_module("flows.registry")
        except Exception as exc:  # any import failure is an unhealthy image
            return f"cannot import Foresight: {type(exc).__name__}: {exc}"
        return None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            if 200 <= response.status < 300:
                return None
            return f"{url} answered HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} did not answer: {exc}"


def main() -> int:
    problem = check(os.environ.get("FORESIGHT_HEALTH_URL"))
    if problem is None:
        return 0
    print(f"unhealthy: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
