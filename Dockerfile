# metric-reader container image.
#
#   docker build -t metric-reader .
#   docker run --rm -e METRIC_NAME=up -e THRESHOLD='<1' \
#     -e PROMETHEUS_ENDPOINT=http://prometheus:9090 -v "$PWD/plugins:/plugins:ro" metric-reader
#
# Plugins: mount them at /plugins (PLUGIN_DIR). Files there must be owned by root or by
# uid 10001 and not group- or world-writable (the service refuses loose plugin files);
# a read-only mount such as a Kubernetes ConfigMap volume is fine.
# State: STATE_FILE=/var/lib/metric-reader/state.json on a volume keeps timers and
# backoffs across restarts.

# BASE: any image with Python 3.11 and its venv module (python:3.11-slim, or Debian
# bookworm with python3-venv, as `make image-test` builds it; see docs/container.md).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# WHEELS: a directory of the build context holding the project's wheel and all its
# dependencies' (`pip wheel . -w build/wheels`): pip installs from it alone, so the build
# needs no network. Empty (the default): the wheel is built here, dependencies from PyPI.
ARG WHEELS=
WORKDIR /src
COPY pyproject.toml README.md ./
COPY metric_reader ./metric_reader
COPY plugin_dir ./plugin_dir
# (COPY needs a source: with no WHEELS, a file that is there anyway stands in.)
COPY ${WHEELS:-pyproject.toml} /wheels/
RUN python3 -m venv /opt/metric-reader \
 && if [ -n "$WHEELS" ]; then \
      /opt/metric-reader/bin/pip install --no-cache-dir --no-index --find-links /wheels metric-reader; \
    else \
      /opt/metric-reader/bin/pip install --no-cache-dir .; \
    fi

FROM ${BASE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin metric-reader \
 && mkdir -p /plugins /var/lib/metric-reader \
 && chown metric-reader /var/lib/metric-reader
COPY --from=build /opt/metric-reader /opt/metric-reader
ENV PATH=/opt/metric-reader/bin:$PATH
# PYTHONSAFEPATH: never import from the working directory, whatever it is.
ENV PLUGIN_DIR=/plugins \
    LISTEN_ADDRESS=:9180 \
    PYTHONSAFEPATH=1 \
    PYTHONUNBUFFERED=1
USER 10001
EXPOSE 9180
# docker and podman run this health check (Kubernetes ignores it: use the probes of
# examples/kubernetes/). It asks /healthz on the port LISTEN_ADDRESS names, on loopback when
# the address is every interface, and passes with LISTEN_ADDRESS=off (nothing to ask).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["python3", "-c", "import os, urllib.request; a = os.environ.get('LISTEN_ADDRESS') or ':9180'; h, _, p = a.rpartition(':'); h = {'': '127.0.0.1', '0.0.0.0': '127.0.0.1', '[::]': '[::1]'}.get(h, h); a.lower() == 'off' or urllib.request.urlopen(f'http://{h}:{p}/healthz', timeout=2)"]
ENTRYPOINT ["metric-reader"]
