# syntax=docker/dockerfile:1
# The inference gateway image: a virtualenv built in one stage, copied whole into a clean slim
# runtime that runs as an unprivileged numeric user.
#
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t inference-gateway:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/deploy-config:/etc/gateway:ro" inference-gateway:0.1.0
#   (reads /etc/gateway/gateway.yaml; `... inference-gateway:0.1.0 check-config FILE` validates one)
#
# The base is pinned by exact version; release pipelines should pin it by digest too
# (python:3.11.13-slim-bookworm@sha256:...), resolved with `docker buildx imagetools inspect`.

FROM python:3.11.13-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from the lock alone, so a code change reuses this layer. The lock
# (tools/lock-requirements.sh) pins pyproject.toml's runtime dependencies and everything they
# need, with the sha256 of every file: pip refuses any download that does not match, and
# --no-deps plus `pip check` make a lock that misses a dependency fail the build.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock \
 && pip check

# Then the code, installed without touching the dependencies; pip compiles the bytecode.
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY problems ./problems
RUN pip install --no-cache-dir --no-deps . \
 && python -m compileall -q /opt/venv/lib


FROM python:3.11.13-slim-bookworm AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="inference-gateway" \
      org.opencontainers.image.description="One endpoint, one credential, one job model over several async ML-inference providers." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.13-slim-bookworm"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin gateway

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
EXPOSE 8080

# For docker run and compose; Kubernetes ignores it and uses the chart's probes. Slim images
# have no curl, hence urllib.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Exec form: the gateway is PID 1 and gets SIGTERM itself, then drains (readiness 503,
# in-flight requests finish within server.shutdown_timeout).
ENTRYPOINT ["python", "-m", "gateway"]
CMD ["serve", "--config", "/etc/gateway/gateway.yaml"]
