"""The domain registry (app/domains.py) is the one list the app is wired from."""

from pathlib import Path

from app.db.models import Base
from app.domains import all_domains
from app.main import create_app
from app.worker import registry

APP = Path(__file__).resolve().parents[1] / "app"


def test_every_domain_package_is_registered() -> None:
    declared = {path.parent.name for path in APP.glob("*/domain.py")}
    assert declared == {d.name for d in all_domains()}
    # A tasks.py only runs if its domain hands its jobs to the registry.
    with_tasks = {path.parent.name for path in APP.glob("*/tasks.py")}
    assert with_tasks <= {d.name for d in all_domains() if d.jobs}


def test_the_worker_runs_every_domains_jobs_and_schedules() -> None:
    assert {n: job for d in all_domains() for n, job in d.jobs.items()} == registry.JOBS
    assert {n: c for d in all_domains() for n, c in d.schedules.items()} == registry.SCHEDULES
    assert {"events.purge_old", "idempotency.purge_expired"} <= set(registry.SCHEDULES)
    assert set(registry.SCHEDULES) <= set(registry.JOBS)
    for name in registry.JOBS:
        domain = name.split(".", 1)[0]
        assert any(d.name == domain and name in d.jobs for d in all_domains()), name


def test_metadata_holds_every_domains_tables() -> None:
    for domain in all_domains():
        if domain.models is None:  # a domain with no tables of its own (reports read others')
            continue
        tables = {
            obj.__table__.name
            for obj in vars(domain.models).values()
            if isinstance(obj, type)
            and hasattr(obj, "__table__")
            and obj.__module__ == domain.models.__name__
        }
        assert tables, domain.name
        assert tables <= set(Base.metadata.tables), domain.name


def test_rest_routers_and_tags_come_from_the_registry() -> None:
    document = create_app().openapi()
    tags = [t["name"] for t in document["tags"]]
    assert tags == [d.tag for d in all_domains() if d.tag] + ["ops"]
    by_tag = {d.tag: d for d in all_domains() if d.tag}
    assert by_tag["admin"].name == "apikeys"
    for tag in document["tags"]:
        if tag["name"] in by_tag:
            assert tag["description"] == by_tag[tag["name"]].description
    used = set()
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert len(operation["tags"]) == 1, path
            used.add(operation["tags"][0])
            if path.startswith("/v1/"):
                assert operation["tags"][0] in by_tag, path
    assert used == set(tags)
