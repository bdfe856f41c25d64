# Two stages: the first builds a virtual environment from the hashed lock files (every package
# pinned, its hash checked) and installs the project into it as a wheel, not editable; the second
# copies only that environment. The code belongs to root and is read-only for the runtime user.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements-build.lock requirements.lock ./
RUN python -m venv /opt/pengingat-spi \
    && /opt/pengingat-spi/bin/pip install --require-hashes --no-deps -r requirements.lock \
    && pip install --require-hashes -r requirements-build.lock
COPY pyproject.toml ./
COPY app ./app
COPY migrations ./migrations
# The wheel carries app/ and migrations/; --no-deps: everything else came from the lock above.
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/pengingat-spi/bin/pip install --no-deps /wheels/*.whl


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/pengingat-spi/bin:$PATH \
    SPI_ENV=production SPI_HOST=0.0.0.0 SPI_PORT=8000 SPI_DATA_DIR=/var/lib/pengingat-spi

RUN useradd --system --uid 10001 --no-create-home --home-dir /var/lib/pengingat-spi spi \
    && mkdir -p /var/lib/pengingat-spi && chown spi:spi /var/lib/pengingat-spi
# Owned by root: the runtime user can read and run the code, never change it.
COPY --from=build /opt/pengingat-spi /opt/pengingat-spi

USER spi
WORKDIR /var/lib/pengingat-spi
# SQLite file and development keys when no SPI_DATABASE_URL is set; spooled import reports.
VOLUME ["/var/lib/pengingat-spi"]
EXPOSE 8000
# Readiness on the configured port: the database answers and is at the newest migration.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/readyz' % os.environ.get('SPI_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"

# `serve` applies migrations first (under a lock on PostgreSQL), then runs the API.
CMD ["spi-reminder", "serve"]
