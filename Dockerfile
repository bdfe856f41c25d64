FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SPI_ENV=production SPI_HOST=0.0.0.0 SPI_PORT=8000 SPI_DATA_DIR=/var/lib/pengingat-spi

WORKDIR /srv/pengingat-spi
RUN useradd --system --uid 10001 --home-dir /srv/pengingat-spi spi \
    && mkdir -p /var/lib/pengingat-spi && chown spi /var/lib/pengingat-spi

COPY pyproject.toml alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable install keeps alembic.ini and migrations/ beside the package, where the CLI finds them.
RUN pip install -e . && chown -R spi /srv/pengingat-spi

USER spi
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"

# `serve` applies migrations first, then runs the API.
CMD ["spi-reminder", "serve"]
