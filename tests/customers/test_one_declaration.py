"""A customer profile field is declared once: the proof, by making the change for real.

``app/customers/schemas.py`` promises that adding a profile field takes three edits: the column in
``models.py``, its migration, and one line in ``CustomerFields``. This test makes exactly those three
edits to a scratch copy of the source tree (a PII field ``nickname``), touches nothing else, and runs
``scratch_nickname_probe.py`` there with pytest in a subprocess, on the same database server. The
probe checks, through the public surfaces only, that the field reached:

- REST: the OpenAPI schemas of ``CustomerCreate``/``CustomerUpdate``/``CustomerOut``, and a real
  POST / GET / PATCH / list / batch-upsert round trip;
- GraphQL: ``Customer``, ``CustomerCreateInput`` and ``CustomerUpdateInput`` in the SDL, and a
  ``createCustomer`` / ``updateCustomer`` round trip;
- events: ``customer.created`` / ``customer.updated`` data and changes;
- redaction: null and listed in ``redacted_fields`` for keys without pii:read (REST, GraphQL, feed);

and some of the copy's existing tests run unchanged beside it (``EXISTING_TESTS``): the migration
checks (one head; models and migrations agree; down and up) and the documented examples (valid,
complete, and answered as documented when sent), so the change needs no fourth edit there either.
The generated contract (``kehu openapi``) would be regenerated in a real change; it is not run here.

Why a copy in a subprocess rather than patching in-process: the surfaces are built at import time
(GraphQL types, statements compiled once, the PII set), so a subclass or monkeypatch would have to
re-create each of them, that is, name every place the field must reach. That list would be the very
second declaration this test must catch. Editing a copy's source and importing it fresh proves the
real claim: whoever adds a hand-written list of customer fields anywhere (columns in the repository,
a GraphQL type, a snapshot dict, a PII list) makes the probe fail, because the scratch change does
not touch that list. The edits are anchored on exact lines, so the test fails loudly (rather than
proving nothing) if those lines move; update the anchors then.
"""

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from app.db.migrations import head_revision

ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests/customers/scratch_nickname_probe.py"
COPIED = ("app", "migrations", "tests", "alembic.ini", "pyproject.toml")
# Run in the copy besides the probe, unchanged: the tests that read the customer schema as a whole
# (models against migrations; documented examples, checked and sent for real), which a real change
# must leave passing without a fourth edit.
EXISTING_TESTS = (
    "tests/test_migrations.py",
    "tests/test_openapi_conventions.py",
    "tests/customers/test_customers_api.py",
)
IN_COPY = "KEHU_SCRATCH_COPY"

# The whole change a developer would make: (file, the line it goes after, the new lines).
MODEL_EDIT = (
    "app/customers/models.py",
    "    occupation: Mapped[str | None] = mapped_column(String(200))\n",
    "    nickname: Mapped[str | None] = mapped_column(String(200))\n",
)
SCHEMA_EDIT = (
    "app/customers/schemas.py",
    "    occupation: ShortText | None = None\n",
    "    nickname: ShortText | None = Field(\n"
    "        default=None,\n"
    '        description="What the customer likes to be called. " + PII_NOTE,\n'
    "        json_schema_extra=PII,\n"
    "    )\n",
)
MIGRATION = '''"""customer nickname

Revision ID: scratch_nickname
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "scratch_nickname"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("nickname", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("customers", "nickname")
'''


def _insert_after(root: Path, path: str, anchor: str, lines: str) -> None:
    file = root / path
    source = file.read_text()
    assert source.count(anchor) == 1, f"{path}: the anchor {anchor!r} must occur exactly once"
    file.write_text(source.replace(anchor, anchor + lines))


def scratch_tree(into: Path) -> Path:
    """A copy of the source tree with the three-place change applied."""
    root = into / "kehu"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy2(source, root / name)
    _insert_after(root, *MODEL_EDIT)
    _insert_after(root, *SCHEMA_EDIT)
    migration = root / "migrations" / "versions" / "2099-01-01-0000_customer_nickname.py"
    migration.write_text(MIGRATION.format(head=head_revision()))
    return root


def changed_files(root: Path) -> set[str]:
    """The files of the copy that differ from (or are not in) the real tree."""
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file()
        and (
            not (ROOT / path.relative_to(root)).is_file()
            or path.read_bytes() != (ROOT / path.relative_to(root)).read_bytes()
        )
    }


async def _run(root: Path, server: str, *args: str) -> str:
    """``python *args`` in the copy, on this database server; the output if it succeeded."""
    env = {
        **os.environ,
        IN_COPY: "1",
        "KEHU_TEST_DATABASE_URL": server,  # the same server, never a second embedded one
        "PYTHONPATH": str(root),  # `app` is the copy's, not the installed editable tree
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=root,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    return report


@pytest.mark.skipif(IN_COPY in os.environ, reason="already in the scratch copy")
async def test_a_profile_field_is_declared_once(tmp_path: Path, db_server: str) -> None:
    root = scratch_tree(tmp_path)
    assert changed_files(root) == {
        "app/customers/models.py",
        "app/customers/schemas.py",
        "migrations/versions/2099-01-01-0000_customer_nickname.py",
    }
    report = await _run(
        root,
        db_server,
        "-m",
        "pytest",
        "-x",
        PROBE,
        *EXISTING_TESTS,
    )
    assert "passed" in report, report
    assert "skipped" not in report, report
