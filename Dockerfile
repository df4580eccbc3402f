# crm-sync: one image for the API (`crm-sync serve`), the workers (`crm-sync worker`) and the
# local fakes (`crm-sync fake-hubspot`, `crm-sync fake-treadsoft`).
#
# The project is installed in place (editable) from /srv, the tree .dockerignore lets in: the
# code reads files beside it at run time (migrations/ and alembic.ini for `crm-sync migrate`
# and /readyz; whatever the fakes validate requests against), and an in-place install keeps
# them where the code looks, at the same paths as in a checkout.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv
COPY . .
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install -e .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 APP_ENV=production WORKER_IN_PROCESS=false
RUN useradd --system --uid 10001 --home /srv crm
WORKDIR /srv
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv /srv
USER crm
EXPOSE 8000
# The API's check. A worker serves no HTTP: its service overrides this with
# `crm-sync workers --here` (its own heartbeat is fresh), as compose.yaml does.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["crm-sync", "serve", "--host", "0.0.0.0", "--port", "8000"]
