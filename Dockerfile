# One image for the four services; docker-compose picks the service by command.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# PyICU (collation) builds against Debian's ICU; the runtime image keeps only the library.
RUN apt-get update && apt-get install -y --no-install-recommends libicu-dev pkg-config g++ \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
# The runtime lock as it is (every package pinned, hashes checked), then the project
# alone: the image runs the versions the tests ran (make lock writes the lock).
COPY requirements.lock /src/
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY shared /src/shared
COPY services /src/services
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation /src && /opt/venv/bin/pip check

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 LOG_FORMAT=json VAR_DIR=/var/lib/evreg
RUN apt-get update && apt-get install -y --no-install-recommends libicu72 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /var/lib/evreg --create-home evreg
COPY --from=build /opt/venv /opt/venv
USER evreg
WORKDIR /var/lib/evreg
# The same entry point as `make run-<service>`; exec form, so SIGTERM reaches
# nameko and it stops gracefully.
CMD ["python", "-m", "services.gateway"]
