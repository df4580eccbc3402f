# crm-sync: one image for the API (`serve`) and the workers (`worker`).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 APP_ENV=production WORKER_IN_PROCESS=false
RUN useradd --system --uid 10001 --home /srv crm
WORKDIR /srv
COPY --from=build /opt/venv /opt/venv
# Migrations are read from the working folder (`crm-sync migrate`, /readyz).
COPY alembic.ini ./
COPY migrations ./migrations
USER crm
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["crm-sync", "serve", "--host", "0.0.0.0", "--port", "8000"]
