"""Settings, read once from the environment (prefix ``KEHU_``) and from ``.env`` if present."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEHU_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:port/db). "
        "Unset: an embedded PostgreSQL is started in `data_dir`.",
    )
    data_dir: Path = Field(
        default=Path(".kehu"), description="Where the embedded PostgreSQL keeps its data."
    )
    host: str = Field(default="127.0.0.1", description="Address `kehu serve` binds to.")
    port: int = Field(default=8000, description="Port `kehu serve` listens on.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    log_json: bool = Field(default=True, description="JSON log lines (false: readable console).")
    db_pool_size: int = Field(default=10, ge=1, description="Connections per process.")
    db_statement_cache: bool = Field(
        default=True,
        description="asyncpg prepared-statement cache; turn off behind PgBouncer "
        "in transaction pooling mode.",
    )
    rate_limit: str = Field(
        default="6000/minute",
        description="Per-API-key request limit in `limits` notation (e.g. `100/second`).",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="`limits` storage URI; `redis://host:6379` to share counters across processes.",
    )
    auth_failure_limit: str = Field(
        default="30/minute",
        description="Failed API-key lookups allowed per client address (`limits` notation); over "
        "it, requests with unknown keys from that address get 429 without a database lookup.",
    )
    idempotency_ttl_hours: int = Field(default=24, ge=1, description="How long keys are kept.")
    run_worker: bool | None = Field(
        default=None,
        description="Run the job worker inside `kehu serve`. Default: yes with the embedded "
        "database, no with an external one (run `kehu worker`).",
    )
    graphiql: bool | None = Field(
        default=None,
        description="Serve the GraphiQL IDE at GET /graphql to browsers (assets from the package, "
        "no CDN). Default: on with the embedded database, off with an external one "
        "(KEHU_DATABASE_URL set). Off: that page answers 404 `not_found`.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve Prometheus `/metrics` from `kehu worker` on this port (on KEHU_HOST): "
        "its job runs and durations, stamped events and pools, which `kehu serve`'s scrape does "
        "not see. Unset: none.",
    )
    run_sequencer: bool = Field(
        default=True,
        description="Run the event sequencer (stamps feed positions) in this process. Several may "
        "run at once; the feed shows new events only while at least one runs.",
    )
    gc_threshold: int = Field(
        default=20_000,
        ge=0,
        description="Allocations between the collector's youngest-generation runs while serving "
        "(Python's default is 700; 0 keeps it). Requests allocate many short-lived objects, "
        "nearly all freed by reference counting; running the cycle collector less often saved "
        "~10 % of a read's CPU (docs/benchmarks.md).",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry traces, metrics and logs, sent to the providers "
        "configured in the process (`opentelemetry-instrument`, OTEL_* variables). Off: no "
        "per-request telemetry cost (about 60 µs per request even with nothing configured).",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector to export traces to: its base URL "
        "(`http://collector:4318`, `/v1/traces` is appended) or its traces URL. Set: a span per "
        "request, SQL statement and job run, in batches (needs the `otel` extra: "
        "`uv run --extra otel kehu serve`). Unset: no spans are made; requests still continue "
        "an incoming W3C `traceparent` and answer with one.",
    )
    otel_service_name: str = Field(
        default="kehu",
        min_length=1,
        description="`service.name` of the exported spans (with KEHU_OTEL_ENDPOINT).",
    )
    graphql_max_depth: int = Field(default=10, ge=1, description="Deepest GraphQL query allowed.")
    graphql_max_aliases: int = Field(default=30, ge=1, description="Aliases per GraphQL query.")
    graphql_max_tokens: int = Field(default=2000, ge=10, description="Tokens per GraphQL query.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (CORS), comma-separated, e.g. "
        "`https://app.example.com,https://admin.example.com`. Empty: CORS is off.",
    )
    webhook_allow_nets: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Internal address ranges webhook deliveries may still reach, comma-separated "
        "CIDR, e.g. `127.0.0.0/8,::1/128` (a test receiver on this host). Empty: every loopback, "
        "private, link-local or otherwise non-public address is refused.",
    )
    webhook_allow_http: bool = Field(
        default=False,
        description="Allow plain `http://` webhook URLs (false: `https://` only).",
    )
    webhook_lease_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="How long a worker owns a webhook delivery it is sending; a worker that dies "
        "mid-send leaves it to be sent again after this (same webhook-id). Keep it above the "
        "15 s delivery timeout; tests lower it.",
    )
    webhook_concurrency: int = Field(
        default=256,
        ge=1,
        le=5000,
        description="Webhook deliveries in flight per worker process.",
    )
    webhook_connections_per_endpoint: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Concurrent HTTP requests (kept-alive connections) per webhook endpoint and "
        "worker process.",
    )
    bootstrap_key_file: Path | None = Field(
        default=None,
        description="Where `kehu serve` writes the first admin key (default: `data_dir`/"
        "bootstrap-key, readable by the owner only).",
    )
    survey_ttl_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="How long a survey link (a resolved case's CSAT survey token) can be answered, "
        "in days from when it is issued; after that it answers 410 `survey_expired`.",
    )
    case_reopen_window_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="How long after it was resolved (or closed) a case can still be reopened, in "
        "days; later a reopen answers 409 `reopen_window_expired` (open a new case instead).",
    )

    currency: str = Field(
        default="CNY",
        pattern=r"^[A-Z]{3}$",
        description="The one currency of orders and of every figure analytics computes (ISO 4217). "
        "An order in another currency answers 422 `currency_not_supported`: revenue is never "
        "summed across currencies.",
    )
    analytics_refresh_cron: str = Field(
        default="15 2 * * *",
        description="When the scheduled full analytics refresh runs (cron, UTC).",
    )
    segments_refresh_cron: str = Field(
        default="45 2 * * *",
        description="When every dynamic segment is compared with its rule again (cron, UTC): "
        "after the analytics refresh, so segments on metrics see the new figures.",
    )
    rfm_window_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="RFM scores rank the customers with an order in this many days before the "
        "refresh's as_of date, over their orders in that window.",
    )
    value_tier_shares: str = Field(
        default="0.80,0.15,0.05",
        pattern=r"^0?\.\d+,0?\.\d+,0?\.\d+$",
        description="Value tiers A, B, C as shares of net revenue: customers ranked by revenue "
        "take tier A while the revenue ranked above them is under the first share, B under the "
        "first two, C after (the three add up to 1).",
    )
    lifecycle_new_days: int = Field(
        default=90,
        ge=1,
        description="A customer whose first order is at most this many days old is `new`.",
    )
    lifecycle_at_risk_days: int = Field(
        default=180,
        ge=1,
        description="A customer whose last order is more than this many days old is `at_risk`.",
    )
    lifecycle_churned_days: int = Field(
        default=365,
        ge=1,
        description="A customer whose last order is more than this many days old is `churned`; a "
        "customer whose latest order came after a gap this long is `reactivated`.",
    )
    model_time_unit_days: int = Field(
        default=7,
        ge=1,
        le=31,
        description="The time unit of the BG/NBD model, in days (7: weeks, as Fader, Hardie & "
        "Lee fit CDNOW).",
    )
    model_sample_size: int = Field(
        default=200_000,
        ge=100,
        description="Customers sampled (at random) to fit the predictive models on; predictions "
        "then cover every customer.",
    )
    model_holdout_days: int = Field(
        default=0,
        ge=0,
        description="When above 0, the models are also fitted on the history up to this many days "
        "before as_of and their predicted repeat purchases compared with the actual ones in those "
        "days (the holdout check of GET /v1/analytics/models).",
    )
    clv_monthly_discount_rate: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Monthly discount rate of the 12-month customer lifetime value.",
    )
    recommendations_min_pair_orders: int = Field(
        default=2,
        ge=1,
        description="Two items count as bought together once they share at least this many orders.",
    )

    @field_validator("otel_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. http://collector:4318")
        return value.strip()

    @field_validator("cors_origins", "webhook_allow_nets", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
