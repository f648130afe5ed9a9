# syntax=docker/dockerfile:1
# Kehu's image: one image for every role (KEHU_ROLE=api runs `kehu serve`, the default;
# worker and migrate run `kehu worker` / `kehu migrate` as the command). No embedded PostgreSQL:
# it always needs KEHU_DATABASE_URL. docker-compose.yml shows the roles together.

# Build: the locked environment, without dev tools or the embedded PostgreSQL.
FROM python:3.11-slim-bookworm AS build
# uv at a fixed version, so a rebuild resolves and installs the same way.
COPY --from=ghcr.io/astral-sh/uv:0.13.10 /uv /uvx /bin/
# Copy mode: the cache is a mount, the environment must hold real files.
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, from the lock alone: changing code or docs does not rebuild this layer. The
# `otel` extra: tracing is for production (off unless KEHU_OTEL_ENDPOINT is set).
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --extra otel --no-install-project
# The project itself (an editable install: migrations and alembic.ini are read from /app).
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
COPY docker/healthcheck.py ./docker/healthcheck.py
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --extra otel \
    && python -m compileall -q app migrations docker

# Run: code and environment owned by root, read-only to the unprivileged user that runs them.
FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 kehu \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kehu
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    KEHU_ROLE=api KEHU_HOST=0.0.0.0 KEHU_PORT=8000
USER 10001:10001
EXPOSE 8000
# Asks /healthz on KEHU_PORT in the api role; healthy while running in any other role.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py"]
CMD ["kehu", "serve"]
