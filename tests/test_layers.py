"""The layer rules of ARCHITECTURE.md, checked on the source: the statements that import, read from
each file's syntax tree (deterministic, and nothing needs to be imported to check it)."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
WEB_FRAMEWORKS = ("fastapi", "starlette", "strawberry")
# The API layer of each domain, and the module that wires a domain into it: they may use the web
# frameworks; everything else in a domain package is framework-free.
API_LAYER_FILES = frozenset({"endpoints.py", "graphql.py", "loaders.py", "domain.py"})
# Every domain package (one with a domain.py: tests/test_domains.py checks they are all registered),
# found on disk, so a new domain is checked without being named here.
DOMAINS = tuple(sorted(path.parent.name for path in APP.glob("*/domain.py")))
FRAMEWORK_FREE = ("core", *DOMAINS)
# Shared layers that reach a domain only through app/domains.py.
SHARED_LAYERS = ("api", "db")
DOMAIN_IMPORT_EXCEPTIONS: tuple[Path, ...] = ()


def _relative(path: Path) -> str:
    return str(path.relative_to(APP.parent))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, absolute (``from . import x`` resolved against the file)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(APP.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _framework_free_files() -> list[Path]:
    files = []
    for package in FRAMEWORK_FREE:
        for path in sorted((APP / package).rglob("*.py")):
            if package in DOMAINS and path.name in API_LAYER_FILES:
                continue
            files.append(path)
    return files


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_checked_files_exist() -> None:
    assert {"customers", "events", "apikeys", "idempotency"} <= set(DOMAINS)
    files = {_relative(p) for p in _framework_free_files()}
    for expected in (
        "app/core/errors.py",
        "app/customers/service.py",
        "app/events/service.py",
        "app/apikeys/service.py",
        "app/idempotency/service.py",
    ):
        assert expected in files


def test_domains_and_core_do_not_import_web_frameworks() -> None:
    """Services, repositories, schemas, models and jobs are framework-free: REST, GraphQL and the
    worker all call them. A job module (tasks.py) may use the worker, never the API."""
    offences = []
    for path in _framework_free_files():
        for module in imported_modules(path):
            if any(_is_under(module, framework) for framework in WEB_FRAMEWORKS):
                offences.append(f"{_relative(path)} imports {module}")
            # The API layer of the app (which imports the frameworks) is off limits too.
            if _is_under(module, "app.api") or _is_under(module, "app.main"):
                offences.append(f"{_relative(path)} imports {module}")
            tail = module.rsplit(".", 1)[-1]
            if module.startswith("app.") and f"{tail}.py" in API_LAYER_FILES - {"domain.py"}:
                offences.append(f"{_relative(path)} imports {module}")
    assert offences == []


def test_core_does_not_import_domains() -> None:
    offences = [
        f"{_relative(path)} imports {module}"
        for path in sorted((APP / "core").rglob("*.py"))
        for module in imported_modules(path)
        if any(_is_under(module, f"app.{domain}") for domain in DOMAINS)
    ]
    assert offences == []


def _shared_layer_files() -> list[Path]:
    files: list[Path] = []
    for layer in SHARED_LAYERS:
        for path in sorted((APP / layer).rglob("*.py")):
            if not any(path.is_relative_to(skip) for skip in DOMAIN_IMPORT_EXCEPTIONS):
                files.append(path)
    return files


def test_shared_layers_reach_domains_only_through_the_registry() -> None:
    """app/api and app/db name no domain package: what they need of the domains comes from
    app/domains.py, so adding a domain touches no shared file but that one."""
    files = _shared_layer_files()
    assert APP / "api" / "deps.py" in files
    assert APP / "db" / "models.py" in files
    offences = set()
    for path in files:
        source = path.read_text()
        for domain in DOMAINS:
            # Imports, and dotted names used without an import statement (importlib, strings).
            imported = any(_is_under(m, f"app.{domain}") for m in imported_modules(path))
            if imported or f"app.{domain}" in source:
                offences.add(f"{_relative(path)} names app.{domain}")
    assert sorted(offences) == []
