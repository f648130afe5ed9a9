"""The container's HEALTHCHECK: asks `kehu serve` for /healthz on the port it listens on.

Only the API role serves HTTP. A container started with ``KEHU_ROLE`` set to anything else (the
compose file's worker and migrate services) is healthy while it runs, so one image carries one
HEALTHCHECK for every role. Standard library only: it runs with the image's Python, and must not
depend on the application importing cleanly to report on it.
"""

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 4
# A wildcard bind is reached on loopback; any other KEHU_HOST is where the server listens.
WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def healthz_url(environ: dict[str, str]) -> str:
    """The /healthz URL of the server these settings start; ValueError for an unusable port."""
    port_text = environ.get("KEHU_PORT", "").strip() or "8000"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"KEHU_PORT must be a port number (1-65535), not {port_text!r}")
    host = environ.get("KEHU_HOST", "").strip()
    host = WILDCARD_HOSTS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{int(port_text)}/healthz"


def check(environ: dict[str, str]) -> str | None:
    """None when healthy, else why not."""
    role = environ.get("KEHU_ROLE", "").strip() or "api"
    if role != "api":
        return None
    try:
        url = healthz_url(environ)
    except ValueError as error:
        return str(error)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except (OSError, ValueError) as error:
        return f"{url} did not answer: {error}"
    return None if status == 200 else f"{url} answered {status}"


def main() -> int:
    problem = check(dict(os.environ))
    if problem is None:
        return 0
    print(f"unhealthy: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
