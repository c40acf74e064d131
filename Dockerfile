# Levelset: one image for the API, the Celery worker and beat.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY engine ./engine
COPY collectors ./collectors
COPY rules ./rules
RUN pip install . && useradd --system --home /app levelset
# The sample catalog, scorecards and facts; mount your own over /srv.
COPY catalog /srv/catalog
COPY scorecards /srv/scorecards
COPY samples /srv/samples
USER levelset
ENV LEVELSET_CATALOG=/srv/catalog LEVELSET_SCORECARDS=/srv/scorecards
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["levelset", "serve", "--host", "0.0.0.0", "--port", "8000"]
