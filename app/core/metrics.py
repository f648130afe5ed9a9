"""Every Prometheus metric Kehu exports, in one place (docs/operations.md#metrics lists them).

Names are ``kehu_*`` in base units (seconds, counts); counters end in ``_total`` when exposed.
Labels are low-cardinality by construction: route templates, job entrypoints, API key ids (bounded by
the number of keys), GraphQL operation names capped at ``MAX_GRAPHQL_OPERATIONS``.

With ``kehu serve --workers N`` each worker process writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them (app/api/metrics.py), so every gauge says how
the processes' values combine (``multiprocess_mode``): ``livesum`` for what each process holds (its
in-flight requests, its pool), ``livemostrecent`` for a figure about the whole database that any
process may sample. Whether this process runs so is read once, as prometheus_client reads it, when
the library is first imported.
"""

import atexit
import os
import shutil
import tempfile
import threading

from prometheus_client import Counter, Gauge, Histogram

MULTIPROCESS_DIR: str | None = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

# --- HTTP ------------------------------------------------------------------------------------
# Labelled by route template (not the raw path), so ids do not explode the series count.
REQUEST_SECONDS = Histogram(
    "kehu_http_request_duration_seconds",
    "HTTP request duration by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REQUESTS_IN_FLIGHT = Gauge(
    "kehu_http_requests_in_flight",
    "HTTP requests being served now (scrapes of /metrics and /healthz not counted).",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "kehu_rate_limited",
    "Requests refused with 429, by API key id; 'anonymous' for key-less routes (survey links), "
    "'by_address' for the per-address limit on failed API-key lookups.",
    ["key_id"],
)

# --- database pools --------------------------------------------------------------------------
# Sampled from the pool objects (app/api/metrics.py), never updated per checkout.
DB_POOL_SIZE = Gauge(
    "kehu_db_pool_size",
    "Connections each pool may hold (KEHU_DB_POOL_SIZE), summed over processes.",
    ["pool"],
    multiprocess_mode="livesum",
)
DB_POOL_CHECKED_OUT = Gauge(
    "kehu_db_pool_checked_out",
    "Pool connections in use now, summed over processes.",
    ["pool"],
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "kehu_db_pool_waiting",
    "Checkouts waiting for a pool connection now, summed over processes.",
    ["pool"],
    multiprocess_mode="livesum",
)

# --- jobs ------------------------------------------------------------------------------------
JOB_RUNS = Counter(
    "kehu_job_runs",
    "Job runs finished, by entrypoint and outcome (ok, error).",
    ["entrypoint", "outcome"],
)
JOB_SECONDS = Histogram(
    "kehu_job_duration_seconds",
    "Job run duration by entrypoint.",
    ["entrypoint"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0),
)
# kehu_job_queue_depth{entrypoint, status} is read from the queue table at scrape time
# (app/api/metrics.py), as is kehu_event_sequencer_lag_seconds.
JOB_QUEUE_DEPTH = "kehu_job_queue_depth"
EVENT_SEQUENCER_LAG = "kehu_event_sequencer_lag_seconds"

# --- GraphQL ---------------------------------------------------------------------------------
GRAPHQL_OPERATIONS = Counter(
    "kehu_graphql_operations",
    "GraphQL operations by operation name and outcome (ok, error: any error in the response).",
    ["operation", "outcome"],
)
GRAPHQL_SECONDS = Histogram(
    "kehu_graphql_operation_duration_seconds",
    "GraphQL operation duration (parse, validate, execute) by operation name.",
    ["operation"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# Operation names are client input: the first ones seen get a series each, later ones share one.
MAX_GRAPHQL_OPERATIONS = 100
UNNAMED_OPERATION = "anonymous"
OTHER_OPERATIONS = "other"
_operation_names: set[str] = set()
_operation_names_lock = threading.Lock()


def graphql_operation_label(name: str | None) -> str:
    """The ``operation`` label of an operation called ``name``: its name while fewer than
    ``MAX_GRAPHQL_OPERATIONS`` names have been seen (per process), then ``other``."""
    if not name:
        return UNNAMED_OPERATION
    if name in _operation_names:
        return name
    with _operation_names_lock:
        if len(_operation_names) >= MAX_GRAPHQL_OPERATIONS:
            return OTHER_OPERATIONS
        _operation_names.add(name)
    return name


# --- events ----------------------------------------------------------------------------------
EVENTS_STAMPED = Counter(
    "kehu_events_stamped",
    "Events the sequencer gave a feed position (this process's sequencer).",
)

# --- webhooks --------------------------------------------------------------------------------
WEBHOOK_ATTEMPTS = Counter(
    "kehu_webhook_attempts", "Webhook delivery attempts by outcome.", ["outcome"]
)
WEBHOOK_LAG = Histogram(
    "kehu_webhook_lag_seconds",
    "From an event's occurrence to its successful delivery.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 36000),
)
WEBHOOK_IN_FLIGHT = Gauge(
    "kehu_webhook_in_flight",
    "Webhook deliveries being sent now, summed over processes.",
    multiprocess_mode="livesum",
)
WEBHOOK_BACKLOG = Gauge(
    "kehu_webhook_backlog",
    "Webhook deliveries waiting (pending), all endpoints.",
    multiprocess_mode="livemostrecent",
)


def share_between_workers() -> str:
    """Set up multiprocess mode for worker processes started after this call (``kehu serve
    --workers N``): a fresh private directory in ``PROMETHEUS_MULTIPROC_DIR``, which they inherit
    and write their values to, removed when this process exits. A directory left over from an
    earlier run would add that run's counts, so it is never reused."""
    directory = tempfile.mkdtemp(prefix="kehu-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory
