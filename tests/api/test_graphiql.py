"""GraphiQL at GET /graphql: served with every asset from the package (nothing from a CDN), behind
KEHU_GRAPHIQL (default: on for the embedded start, off with an external database)."""

import base64
import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from graphql import get_introspection_query

from app.api.graphql.graphiql import graphiql_enabled
from app.core.config import Settings
from scripts.graphiql_screenshot import check_app, dump_dom, editor_problem, find_chromium, serving
from tests.fixtures.api import assert_problem

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
EXTERNAL_DATABASE = "postgresql://kehu@db.example.internal:5432/kehu"  # never connected to
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "poster", "data", "srcset", "background"}
# Anything naming a scheme and host, or a protocol-relative `//host`.
URL_IN_TEXT = re.compile(r"""(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^\s"'`<>)\\]+""")
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]*)""")
CSS_IMPORT = re.compile(r"@import\s")


class PageParts(HTMLParser):
    """Every URL-valued attribute, and each inline script's text, of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.integrity: dict[str, str] = {}  # by src/href
        self.inline_scripts: list[str] = []
        self.inline_styles: list[str] = []
        self._open: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value))
            if name == "style":
                self.inline_styles.append(value)
        if "integrity" in values:
            self.integrity[values.get("src") or values.get("href", "")] = values["integrity"]
        if (tag == "script" and "src" not in values) or tag == "style":
            self._open, self._text = tag, []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            text = "".join(self._text)
            (self.inline_scripts if tag == "script" else self.inline_styles).append(text)
            self._open = None


def parse_page(html: str) -> PageParts:
    parts = PageParts()
    parts.feed(html)
    parts.close()
    return parts


def off_host(url: str) -> bool:
    """Whether a browser would fetch ``url`` from anywhere but the page's own origin."""
    parts = urlsplit(url.strip())
    if parts.scheme == "data":
        return False
    return bool(parts.scheme or parts.netloc or url.strip().startswith("//"))


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def settings_with(**overrides: object) -> Settings:
    return Settings(
        log_json=True,
        log_level="warning",
        rate_limit="100000/minute",
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
def settings() -> Settings:
    # Explicit, so a KEHU_DATABASE_URL or KEHU_GRAPHIQL in the environment cannot change the test:
    # no database URL is the embedded start, where GraphiQL is on by default.
    return settings_with(database_url=None, graphiql=None)


async def get_page(http: httpx.AsyncClient) -> tuple[httpx.Response, PageParts]:
    response = await http.get("/graphql", headers=HTML)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response, parse_page(response.text)


# --- on: the page and its assets ------------------------------------------------------------------


async def test_the_page_names_only_same_origin_urls(anon: httpx.AsyncClient) -> None:
    _, page = await get_page(anon)
    assert page.urls, "the page loads no asset at all"
    assert page.inline_scripts, "the page starts GraphiQL from no script"
    for tag, attribute, value in page.urls:
        assert not off_host(value), f"<{tag} {attribute}={value!r}> leaves the host"
    for text in page.inline_scripts:
        assert URL_IN_TEXT.findall(text) == [], "an inline script names an absolute URL"
    for text in page.inline_styles:
        assert URL_IN_TEXT.findall(text) == []
        assert [u for u in CSS_URL.findall(text) if off_host(u)] == []
    scripts = [value for tag, attribute, value in page.urls if tag == "script"]
    stylesheets = [
        value for tag, attribute, value in page.urls if tag == "link" and value != "data:,"
    ]
    assert any(url.endswith("/react.production.min.js") for url in scripts)
    assert any(url.endswith("/graphiql.min.js") for url in scripts)
    assert any(url.endswith("/graphiql.min.css") for url in stylesheets)


async def test_every_asset_is_served_as_published(anon: httpx.AsyncClient) -> None:
    _, page = await get_page(anon)
    assets = [value for _, _, value in page.urls if not value.startswith("data:")]
    assert len(assets) >= 6  # react, react-dom, graphiql js+css, explorer js+css
    for url in assets:
        response = await anon.get(url)
        assert response.status_code == 200, url
        content_type = response.headers["content-type"]
        if url.endswith(".css"):
            assert content_type.startswith("text/css"), (url, content_type)
            # Fonts and images inside the stylesheets are data: URLs, never fetched from a host.
            assert [u for u in CSS_URL.findall(response.text) if off_host(u)] == [], url
            assert not CSS_IMPORT.search(response.text), url
        else:
            assert "javascript" in content_type, (url, content_type)
        assert "max-age=31536000" in response.headers["cache-control"], url
        # The bytes are the npm packages' own: their hash is the one strawberry's page pins.
        assert page.integrity.get(url) == sri(response.content), url


async def test_the_content_security_policy_allows_only_this_origin(anon: httpx.AsyncClient) -> None:
    response, page = await get_page(anon)
    directives = csp_directives(response.headers["content-security-policy"])
    assert directives["default-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    for name, sources in directives.items():
        for source in sources:
            assert source.startswith("'") or source == "data:", f"{name} allows {source}"
    # The inline script that starts GraphiQL is allowed by its hash; a changed script must change
    # the policy too, or the browser refuses to run it.
    [setup] = page.inline_scripts
    digest = base64.b64encode(hashlib.sha256(setup.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in directives["script-src"]
    assert "'unsafe-inline'" not in directives["script-src"]


async def test_assets_outside_the_vendored_files_are_not_served(anon: httpx.AsyncClient) -> None:
    _, page = await get_page(anon)
    assets = next(value for tag, _, value in page.urls if tag == "script")
    base = assets.rsplit("/", 2)[0]  # /graphql/static
    missing = await anon.get(f"{base}/graphiql-3.8.3/nothing-here.js")
    assert_problem(missing, 404, "not_found")
    # The page's template and the vendoring notes sit next to the vendored files, not among them.
    for name in ("graphiql.html", "README.md", "../graphiql.py"):
        escaped = await anon.get(f"{base}/..%2F{name}")
        assert escaped.status_code == 404, name


async def test_only_a_browser_asking_for_html_gets_the_page(
    anon: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    # With a key and no `Accept: text/html` (curl's `*/*`), a GET without a query is a bad
    # GraphQL request, not an HTML page.
    no_query = await client.get("/graphql", headers={"Accept": "*/*"})
    assert_problem(no_query, 400, "invalid_request")
    # A GET with a query runs it, whatever it accepts.
    ran = await client.get("/graphql", params={"query": "{ __typename }"}, headers=HTML)
    assert ran.status_code == 200
    assert ran.json() == {"data": {"__typename": "Query"}}
    # The page itself needs no key (the key is typed into it).
    page = await anon.get("/graphql", headers=HTML)
    assert page.status_code == 200
    assert 'id="graphiql"' in page.text


async def test_the_schema_request_graphiql_sends_is_answered(client: httpx.AsyncClient) -> None:
    # GraphiQL loads the schema for its docs, explorer and autocompletion with the standard
    # introspection query (9 levels of `ofType`), under Kehu's depth and token limits.
    query = get_introspection_query(input_value_deprecation=True)
    response = await client.post(
        "/graphql", json={"query": query, "operationName": "IntrospectionQuery"}
    )
    body = response.json()
    assert response.status_code == 200
    assert "errors" not in body, body.get("errors")
    schema = body["data"]["__schema"]
    assert schema["queryType"]["name"] == "Query"
    assert any(t["name"] == "Customer" for t in schema["types"])


async def test_the_example_query_runs(anon: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    _, page = await get_page(anon)
    [setup] = page.inline_scripts
    found = re.search(r"const EXAMPLE_QUERY = `(.*?)`;", setup, re.DOTALL)
    assert found is not None
    body = (await client.post("/graphql", json={"query": found.group(1)})).json()
    assert "errors" not in body, body.get("errors")
    assert body["data"]["customers"]["edges"] == []


# --- off -----------------------------------------------------------------------------------------


class TestOff:
    @pytest.fixture(
        params=[
            {"database_url": EXTERNAL_DATABASE, "graphiql": None},  # the default with one
            {"database_url": None, "graphiql": False},
        ],
        ids=["external-database-default", "turned-off"],
    )
    def settings(self, request: pytest.FixtureRequest) -> Settings:
        return settings_with(**request.param)

    async def test_no_page_and_no_assets(
        self, anon: httpx.AsyncClient, client: httpx.AsyncClient
    ) -> None:
        page = await anon.get("/graphql", headers=HTML)
        body = assert_problem(page, 404, "not_found")
        assert "KEHU_GRAPHIQL" in body["detail"]
        asset = await anon.get("/graphql/static/graphiql-3.8.3/graphiql.min.js")
        assert_problem(asset, 404, "not_found")
        # GraphQL itself is unchanged.
        ran = await client.post("/graphql", json={"query": "{ __typename }"})
        assert ran.json() == {"data": {"__typename": "Query"}}
        over_get = await client.get("/graphql", params={"query": "{ __typename }"}, headers=HTML)
        assert over_get.json() == {"data": {"__typename": "Query"}}


class TestOnWithAnExternalDatabase:
    @pytest.fixture
    def settings(self) -> Settings:
        return settings_with(database_url=EXTERNAL_DATABASE, graphiql=True)

    async def test_the_page_is_served(self, anon: httpx.AsyncClient) -> None:
        _, page = await get_page(anon)
        script = next(value for tag, _, value in page.urls if tag == "script")
        assert (await anon.get(script)).status_code == 200


# --- the setting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("database_url", "graphiql", "enabled"),
    [
        (None, None, True),  # embedded start
        ("", None, True),  # an empty KEHU_DATABASE_URL is no URL: embedded, as `kehu serve` says
        (EXTERNAL_DATABASE, None, False),
        (EXTERNAL_DATABASE, True, True),
        (None, False, False),
    ],
)
def test_default_resolution(database_url: str | None, graphiql: bool | None, enabled: bool) -> None:
    assert graphiql_enabled(settings_with(database_url=database_url, graphiql=graphiql)) is enabled


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEHU_GRAPHIQL", raising=False)
    assert Settings().graphiql is None
    monkeypatch.setenv("KEHU_GRAPHIQL", "false")
    assert Settings().graphiql is False
    monkeypatch.setenv("KEHU_GRAPHIQL", "true")
    monkeypatch.setenv("KEHU_DATABASE_URL", EXTERNAL_DATABASE)
    assert graphiql_enabled(Settings()) is True


# --- a real browser, offline ---------------------------------------------------------------------


def test_renders_offline_in_headless_chromium() -> None:
    """The page run by Chromium that reaches nothing but 127.0.0.1 shows GraphiQL's editor
    (scripts/graphiql_screenshot.py also proves the cut-off and takes the screenshot)."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium binary found (apt-get install -y chromium)")
    with serving(check_app()) as base:
        dom = dump_dom(chromium, base + "/graphql")
    assert editor_problem(dom) is None, editor_problem(dom)
