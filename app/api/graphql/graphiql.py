"""The GraphiQL IDE at ``GET /graphql`` (a browser asking for HTML), with every file it loads served
from this package, as /docs is: strawberry's own page loads React and GraphiQL from unpkg, and shows
"Loading…" forever on a machine without internet access.

``KEHU_GRAPHIQL`` turns it on or off (``graphiql_enabled``). Off, neither the page nor its assets
are served: the page's request answers 404 ``not_found`` (``KehuGraphQLRouter``).

The vendored files are byte for byte those strawberry's page names, with the same Subresource
Integrity hashes (``static/README.md`` says where each comes from). Their URLs hold the package
version, so browsers may cache them for a year. The page's Content-Security-Policy lets the browser
load and send nothing off this origin.
"""

import base64
import hashlib
import html
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from app.core.config import Settings

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
# Below the GraphQL path: /graphql/static/graphiql-3.8.3/graphiql.min.js
ASSETS_SUFFIX = "/static"
CACHE_FOR_A_YEAR = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    path: str  # below VENDOR_DIR and the assets URL
    integrity: str  # as published in strawberry's page (static/README.md)


STYLESHEETS = (
    Asset(
        "graphiql-3.8.3/graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    Asset(
        "plugin-explorer-1.0.2/style.css",
        "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
    ),
)
# In load order: the explorer plugin takes React and GraphQL from the GraphiQL global.
HEAD_SCRIPTS = (
    Asset(
        "react-18.2.0/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    ),
    Asset(
        "react-dom-18.2.0/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
)
BODY_SCRIPTS = (
    Asset(
        "graphiql-3.8.3/graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    Asset(
        "plugin-explorer-1.0.2/index.umd.js",
        "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
    ),
)
ASSETS = (*STYLESHEETS, *HEAD_SCRIPTS, *BODY_SCRIPTS)

_ASSETS_PLACEHOLDER = "{{ assets }}"


def graphiql_enabled(settings: Settings) -> bool:
    """``KEHU_GRAPHIQL`` when set; otherwise on for the embedded start and off with an external
    database. Like ``KEHU_RUN_WORKER``, "embedded" means no ``KEHU_DATABASE_URL`` (as `kehu
    serve` decides); deciding it here covers every way the app is built (`serve`, its
    ``--workers`` factory, tests)."""
    if settings.graphiql is not None:
        return settings.graphiql
    return not settings.database_url


class VendoredFiles(StaticFiles):
    """The vendored assets, cacheable for a year: a new version of a package gets a new path."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = CACHE_FOR_A_YEAR
        return response


def mount_assets(app: FastAPI, graphql_path: str) -> str:
    """Serve the vendored assets below ``graphql_path``; returns their URL path."""
    url = graphql_path.rstrip("/") + ASSETS_SUFFIX
    app.mount(url, VendoredFiles(directory=VENDOR_DIR), name="graphiql-assets")
    return url


def _tag(asset: Asset, element: str) -> str:
    url = html.escape(f"{_ASSETS_PLACEHOLDER}/{asset.path}")
    integrity = html.escape(asset.integrity)
    if element == "link":
        return f'    <link rel="stylesheet" href="{url}" integrity="{integrity}" />'
    return f'    <script src="{url}" integrity="{integrity}"></script>'


def _script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()


@cache
def _page_template() -> tuple[str, str]:
    """The page with the assets' URL prefix left open, and its Content-Security-Policy."""
    setup = (STATIC_DIR / "graphiql-setup.js").read_text(encoding="utf-8")
    page = (
        (STATIC_DIR / "graphiql.html")
        .read_text(encoding="utf-8")
        .replace(
            "{{ head }}",
            "\n".join(
                [
                    *(_tag(a, "link") for a in STYLESHEETS),
                    *(_tag(a, "script") for a in HEAD_SCRIPTS),
                ]
            ),
        )
        .replace("{{ body }}", "\n".join(_tag(a, "script") for a in BODY_SCRIPTS))
        .replace("{{ setup }}", setup)
    )
    # The one inline script is allowed by its hash; styles need 'unsafe-inline' (GraphiQL and
    # React set style attributes); GraphiQL's fonts are data: URLs inside its stylesheet.
    policy = "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' '{_script_hash(setup)}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return page, policy


def graphiql_page(assets_url: str) -> HTMLResponse:
    """The GraphiQL page, loading its assets from ``assets_url`` (a path on this origin)."""
    page, policy = _page_template()
    return HTMLResponse(
        page.replace(html.escape(_ASSETS_PLACEHOLDER), html.escape(assets_url)),
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )
