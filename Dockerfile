# syntax=docker/dockerfile:1
# One image for Foresight's three long-running roles and its flow runs (docs/production.md):
#   Prefect worker     prefect worker start --pool foresight --type kubernetes --with-healthcheck
#   flow-run Jobs      started by the worker (prefect flow-run execute; prefect.yaml's pull step
#                      changes to FORESIGHT_PROJECT_DIR, where flows/ and prefect.yaml are)
#   stream processor   foresight stream
#   MLflow server      mlflow server --backend-store-uri ... --artifacts-destination s3://...
# Build:  docker build -t <registry>/foresight:<version> .
# The dependencies are exactly requirements.lock (plus the Kubernetes worker's own pins), the
# project itself is installed without resolving anything, and it runs as an unprivileged user.
# tests/unit/test_dockerfile.py checks these rules, and runs this file's CMD and HEALTHCHECK
# commands in a virtualenv built the same way.

# --- build: a virtualenv from the lock files, then the project without its dependencies -------
FROM python:3.11.7-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler for any dependency that ships no wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY requirements.lock infra/docker/kubernetes-worker.lock /tmp/locks/
RUN /opt/venv/bin/pip install -r /tmp/locks/requirements.lock \
    && /opt/venv/bin/pip install --no-deps -r /tmp/locks/kubernetes-worker.lock
WORKDIR /src
COPY . /src
RUN /opt/venv/bin/pip install --no-deps /src \
    && /opt/venv/bin/pip check

# --- runtime: the virtualenv, prefect.yaml and the flows, an unprivileged user ------------------
FROM python:3.11.7-slim-bookworm AS runtime
# libgomp1: LightGBM's OpenMP runtime (the slim image lacks it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 foresight \
    && useradd --system --uid 10001 --gid foresight --home-dir /var/lib/foresight --create-home \
       --shell /usr/sbin/nologin foresight
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/prefect.yaml /opt/foresight/prefect.yaml
COPY --from=build /src/flows /opt/foresight/flows
COPY --from=build /src/infra/docker/healthcheck.py /opt/foresight/infra/docker/healthcheck.py
COPY --from=build /src/infra/local/foresight.yaml /opt/foresight/infra/local/foresight.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FORESIGHT_PROJECT_DIR=/opt/foresight \
    FORESIGHT_HOME=/var/lib/foresight \
    PREFECT_HOME=/tmp/prefect \
    MPLCONFIGDIR=/tmp/matplotlib \
    DO_NOT_TRACK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false
WORKDIR /opt/foresight
USER 10001:10001
# FORESIGHT_HEALTH_URL names the role's endpoint (infra/docker/healthcheck.py); unset, the check
# imports the flows.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/opt/foresight/infra/docker/healthcheck.py"]
EXPOSE 8080 9464 5000
# Each role sets its own command (infra/k8s/*.yaml); bare, the image shows what it can run.
CMD ["foresight", "--help"]
