# syntax=docker/dockerfile:1
# Build: the locked environment, without dev tools or the embedded PostgreSQL.
FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/srv/kehu/.venv
RUN pip install --no-cache-dir uv
WORKDIR /srv/kehu
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN uv sync --locked --no-dev

# Run: a non-root user; needs KEHU_DATABASE_URL.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /srv/kehu kehu
WORKDIR /srv/kehu
COPY --from=build --chown=kehu:kehu /srv/kehu /srv/kehu
ENV PATH=/srv/kehu/.venv/bin:$PATH KEHU_HOST=0.0.0.0 KEHU_PORT=8000 PYTHONUNBUFFERED=1
USER kehu
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["kehu", "serve"]
