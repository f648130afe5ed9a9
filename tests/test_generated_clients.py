"""Clients generated from the committed OpenAPI document type-check, strictly.

- TypeScript: openapi-typescript turns openapi/openapi.json into types, and a small usage file that
  calls the API through openapi-fetch passes `tsc --noEmit --strict`.
- Python: openapi-python-client generates a package, and mypy --strict passes on it and on a small
  usage file that calls `get_customer.asyncio(...)`.

Both usage files also hold calls that must NOT type-check (`@ts-expect-error`, `# type: ignore[...]`
with mypy's warn_unused_ignores): if the generated types ever decay to `any`/`Any`, those lines stop
erroring and the check fails.

Tool versions are pinned so results repeat. Everything generated goes to pytest's temporary folder;
the npm packages are installed once into a folder under the system temp dir named after the versions.
Without node/npm the TypeScript test is skipped, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.fixtures.tools import file_lock, missing_tool, run_tool

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "openapi" / "openapi.json"

NPM_PACKAGES = {"openapi-typescript": "7.13.0", "openapi-fetch": "0.17.0", "typescript": "5.9.3"}
OPENAPI_PYTHON_CLIENT = "openapi-python-client==0.29.1"
MYPY = "mypy==2.4.1"
# What the generated package imports (it uses no python-dateutil for this document).
CLIENT_RUNTIME = ["httpx==0.28.1", "attrs==26.1.0"]


# --------------------------------------------------------------------------- TypeScript

USAGE_TS = """\
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./schema";

type Customer = components["schemas"]["CustomerOut"];
type Problem = components["schemas"]["Problem"];
// The operation names read like the methods a user calls.
type GetCustomer = operations["getCustomer"];
type CreateCustomer = operations["createCustomer"];
type ListCustomers = operations["listCustomers"];

const client = createClient<paths>({
  baseUrl: "http://127.0.0.1:8000",
  headers: { Authorization: "Bearer kehu_example" },
});

export async function getCustomer(customerId: string): Promise<Customer | undefined> {
  const params: GetCustomer["parameters"] = { path: { customer_id: customerId } };
  const { data, error, response } = await client.GET("/v1/customers/{customer_id}", { params });
  if (error !== undefined) {
    const problem: Problem = error;
    throw new Error(`HTTP ${response.status} ${problem.code}: ${problem.detail}`);
  }
  if (data === undefined) return undefined; // 304 Not Modified
  const id: string = data.id;
  const tags: string[] = data.tags;
  const email: string | null | undefined = data.email;
  void [id, tags, email];
  return data;
}

export async function createCustomer(email: string): Promise<Customer> {
  const body: CreateCustomer["requestBody"] extends { content: { "application/json": infer B } }
    ? B
    : never = { email, first_name: "Ada", tags: ["vip"] };
  const { data, error } = await client.POST("/v1/customers", {
    body,
    params: { header: { "Idempotency-Key": "create-ada-1" } },
  });
  if (error !== undefined || data === undefined) throw new Error("create failed");
  return data;
}

export async function listCustomers(): Promise<Customer[]> {
  const query: ListCustomers["parameters"]["query"] = { limit: 10 };
  const { data } = await client.GET("/v1/customers", { params: { query } });
  return data?.data ?? [];
}

// Calls that must not type-check (tsc fails if any of these lines does NOT error).
export async function misuse(): Promise<void> {
  // @ts-expect-error: customer_id is a string
  await client.GET("/v1/customers/{customer_id}", { params: { path: { customer_id: 42 } } });
  // @ts-expect-error: the path parameter is required
  await client.GET("/v1/customers/{customer_id}", {});
  // @ts-expect-error: no such path
  await client.GET("/v1/customer/{customer_id}", { params: { path: { customer_id: "x" } } });
  const { data } = await client.GET("/v1/customers/{customer_id}", {
    params: { path: { customer_id: "x" } },
  });
  // @ts-expect-error: CustomerOut has no such field
  void data?.no_such_field;
}
"""

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "noUnusedLocals": False,
        "target": "ES2022",
        "module": "ESNext",
        "moduleResolution": "Bundler",
        "lib": ["ES2022", "DOM"],
        "types": [],
        "skipLibCheck": False,
    },
    "files": ["usage.ts"],
}


def _npm_tools(npm: str) -> Path:
    """node_modules with the pinned packages, installed once per set of versions."""
    key = hashlib.sha256(json.dumps(NPM_PACKAGES, sort_keys=True).encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"kehu-openapi-ts-{key}"
    done = home / ".installed"
    with file_lock(Path(tempfile.gettempdir()) / f"kehu-openapi-ts-{key}.lock"):
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            (home / "package.json").write_text(
                json.dumps({"private": True, "dependencies": NPM_PACKAGES}, indent=2)
            )
            run_tool(
                [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                cwd=home,
                timeout=100,
                what="npm install " + " ".join(f"{k}@{v}" for k, v in NPM_PACKAGES.items()),
            )
            done.write_text(json.dumps(NPM_PACKAGES))
    return home / "node_modules"


def test_typescript_client_type_checks(tmp_path: Path) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing_tool("node and npm are needed to generate and type-check the TypeScript client")
        return
    node_modules = _npm_tools(npm)
    (tmp_path / "node_modules").symlink_to(node_modules, target_is_directory=True)
    bin_dir = node_modules / ".bin"
    run_tool(
        [node, str(bin_dir / "openapi-typescript"), str(OPENAPI), "-o", "schema.d.ts"],
        cwd=tmp_path,
        timeout=60,
        what="openapi-typescript",
    )
    (tmp_path / "usage.ts").write_text(USAGE_TS)
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG, indent=2))
    run_tool(
        [node, str(bin_dir / "tsc"), "-p", "tsconfig.json", "--noEmit", "--strict"],
        cwd=tmp_path,
        timeout=90,
        what="tsc --noEmit --strict on the generated TypeScript types and usage.ts",
    )


# --------------------------------------------------------------------------- Python

USAGE_PY = '''\
"""Calls the generated client the way a user would; type-checked, never run."""

from uuid import UUID

from kehu_client import AuthenticatedClient
from kehu_client.api.customers import create_customer, get_customer, list_customers
from kehu_client.models import CustomerCreate, CustomerOut, PageOutCustomerOut, Problem
from kehu_client.types import Response


async def main(customer_id: UUID) -> str | None:
    client = AuthenticatedClient(base_url="http://127.0.0.1:8000", token="kehu_example")
    async with client as c:
        found = await get_customer.asyncio(customer_id, client=c)
        if isinstance(found, Problem):
            raise RuntimeError(f"{found.status} {found.code}: {found.detail}")
        created = await create_customer.asyncio(
            client=c, body=CustomerCreate(email="ada@example.com", tags=["vip"])
        )
        if isinstance(created, CustomerOut):
            new_id: UUID = created.id
            tags: list[str] = created.tags
            print(new_id, tags)
        page: Response[PageOutCustomerOut | Problem] = await list_customers.asyncio_detailed(
            client=c, limit=10
        )
        if isinstance(page.parsed, PageOutCustomerOut):
            print(len(page.parsed.data))
        # Calls that must not type-check: with warn_unused_ignores (part of --strict) mypy fails
        # if any of these ignores is not needed, i.e. if the generated types decayed to Any.
        await get_customer.asyncio("not-a-uuid", client=c)  # type: ignore[arg-type]
        CustomerCreate(email=42)  # type: ignore[arg-type]
        if isinstance(found, CustomerOut):
            found.no_such_field  # type: ignore[attr-defined]  # noqa: B018
            if isinstance(found.email, str):
                return found.email
        return None
'''

# The generator's own client.py (a fixed template, the same for every document) forwards
# `*args: object` from `__exit__`/`__aexit__` to httpx's typed `__exit__`/`__aexit__`, which mypy
# reports as arg-type. That one error code is switched off for that one module; nothing else is.
MYPY_INI = """\
[mypy]
strict = True
warn_unused_configs = True

[mypy-kehu_client.client]
disable_error_code = arg-type
"""


def _uv() -> list[str]:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        return [uv]
    return [sys.executable, "-m", "uv"]


def test_python_client_type_checks(tmp_path: Path) -> None:
    uv = _uv()
    run_tool(
        [
            *uv,
            "tool",
            "run",
            "--from",
            OPENAPI_PYTHON_CLIENT,
            "openapi-python-client",
            "generate",
            "--path",
            str(OPENAPI),
            "--output-path",
            str(tmp_path / "kehu_client"),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        cwd=tmp_path,
        timeout=90,
        what=f"{OPENAPI_PYTHON_CLIENT} generate --fail-on-warning",
    )
    generated = tmp_path / "kehu_client" / "api" / "customers" / "get_customer.py"
    assert generated.is_file(), (
        "no api/customers/get_customer.py: did operationId getCustomer change?"
    )
    (tmp_path / "usage.py").write_text(USAGE_PY)
    (tmp_path / "mypy.ini").write_text(MYPY_INI)
    with_runtime = [arg for package in CLIENT_RUNTIME for arg in ("--with", package)]
    run_tool(
        [
            *uv,
            "tool",
            "run",
            "--from",
            MYPY,
            *with_runtime,
            "mypy",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "kehu_client",
            "usage.py",
        ],
        cwd=tmp_path,
        timeout=90,
        what="mypy --strict on the generated Python client and usage.py",
    )
