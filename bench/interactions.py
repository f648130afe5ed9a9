"""Logging an interaction through REST against the raw app's single-row insert, on this machine.

    uv run python bench/interactions.py [--seconds 10] [--warmup 3] [--concurrency 32] [--rounds 1]

1-2. `bench/side_by_side.py`: two fresh databases (kehu_bench_interactions and _raw), Kehu's
   migrated with an admin key and `--customers` demo customers; `kehu serve` and
   `uvicorn bench.raw_app:app` side by side (1 worker each, the same DB pool size, the job worker
   off), each in its own session.
3. Loads, with wrk, the raw app's `POST /customers` (one INSERT) and Kehu's `POST /v1/interactions`
   (a completed call of a random seeded customer with a unique source/external_id, as a partner
   logs them: the live-customer check, the insert and its `interaction.logged` event, in one
   statement). Per scenario: req/s, p50, p99, server CPU per request; with --rounds N each figure
   is its median round.
4. Prints the table with Kehu against raw (acceptance: ≥ 0.4 × raw), stops the servers and drops
   the databases (also on Ctrl-C or an error). Everything is bounded by timeouts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import side_by_side  # noqa: E402
from bench.run import (  # noqa: E402
    LUA_COMMON,
    PLAN,
    Scenario,
    _lua_headers,
    http,
    lua_post,
)

TARGET = 0.4
INTERACTION_PLAN = [
    next(s for s in PLAN if s.key == "raw_post"),
    Scenario(
        "kehu_interaction", "Kehu POST /v1/interactions", "kehu", raw="raw_post", target=TARGET
    ),
]


def lua_interaction(customer_ids: list[str], headers: dict[str, str]) -> str:
    """A completed inbound call of a random customer, with a unique (source, external_id)."""
    id_list = ",".join(f'"{i}"' for i in customer_ids)
    return (
        LUA_COMMON
        + f'wrk.headers["Content-Type"] = "application/json"\n{_lua_headers(headers)}'
        + f"local ids = {{{id_list}}}\n"
        + "function request()\n"
        + "  counter = counter + 1\n"
        + '  local body = string.format(\'{"customer_id": "%s", "channel": "phone", '
        + '"direction": "inbound", "kind": "call", "subject": "Where is my parcel?", '
        + '"agent": "li.na", "duration_seconds": 95, "source": "bench", '
        + '"external_id": "%s-%d-%d"}\', ids[math.random(#ids)], prefix, tid, counter)\n'
        + '  return wrk.format("POST", "/v1/interactions", nil, body)\n'
        + "end\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    side_by_side.add_arguments(parser)
    args = parser.parse_args()
    side_by_side.check_arguments(parser, args)
    try:
        with side_by_side.side_by_side(args, "interactions") as run:
            sample = {
                "customer_id": run.ids[0],
                "channel": "phone",
                "direction": "inbound",
                "kind": "call",
                "source": "bench",
                "external_id": f"sanity-{run.run_id}",
            }
            status, body = http("POST", f"{run.kehu.base}/v1/interactions", sample, run.auth)
            if status != 201:
                raise RuntimeError(f"POST /v1/interactions answered {status}: {str(body)[:300]}")
            scripts = {
                "raw_post": lua_post("/customers", {}),
                "kehu_interaction": lua_interaction(run.ids, run.auth),
            }
            side_by_side.measure(run, args, INTERACTION_PLAN, scripts)
        return 0
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\n· interrupted ({type(exc).__name__}); stopping the servers", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
