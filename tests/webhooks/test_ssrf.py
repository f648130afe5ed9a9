"""The SSRF guard: URLs and addresses refused by their spelling, names by what they resolve to, and
real connections through httpx2 that never reach a listener on 127.0.0.1 unless it is allowed.

No DNS: names are answered by injected resolvers. Every socket is on 127.0.0.1 and every wait is
bounded."""

import asyncio
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import httpx2 as httpx
import pydantic
import pytest

from app.core.config import Settings
from app.webhooks import ssrf
from app.webhooks.ssrf import (
    GuardedBackend,
    Resolver,
    TargetPolicy,
    TargetRefused,
    check_address,
    check_url,
    guarded_transport,
    resolve_checked,
)

NOTHING = TargetPolicy()
HTTP_ONLY = TargetPolicy(allow_http=True)
LOCAL = TargetPolicy(allow_nets=(ipaddress.ip_network("127.0.0.0/8"),), allow_http=True)
PUBLIC_IP = "93.184.216.34"
TIMEOUT = 5


def resolver_for(answers: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    """A resolver that knows only ``answers``; it records each name asked in ``calls``."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


# (url, a fragment of the reason): the reason shows which check refused it.
REFUSED_URLS = [
    ("https://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("https://localhost/", "localhost"),
    ("https://0.0.0.0/", "the unspecified address"),
    ("https://10.0.0.1/", "a private address"),
    ("https://172.16.0.1/", "a private address"),
    ("https://192.168.1.1/", "a private address"),
    ("https://169.254.169.254/latest/meta-data", "a link-local address"),
    ("https://100.64.0.1/", "a shared (carrier-grade NAT) address"),
    ("https://198.18.0.1/", "a benchmarking address"),
    ("https://[::1]/", "::1 is a loopback address"),
    ("https://[::ffff:127.0.0.1]/", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("https://[fc00::1]/", "a private (unique local) address"),
    ("https://[fe80::1]/", "a link-local address"),
    ("https://2130706433/", "not a dotted quad"),
    ("https://0177.0.0.1/", "Invalid IPv4 address"),
    ("https://0x7f000001/", "not a dotted quad"),
    ("https://127.1/", "not a dotted quad"),
    ("file:///etc/passwd", "the scheme 'file' is not allowed"),
    ("http://example.com/", "the scheme 'http' is not allowed"),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://224.0.0.1/", "a multicast address"),
    ("https://[::127.0.0.1]/", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("https://[64:ff9b::7f00:1]/", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("https://[2002:7f00:1::]/", "an IPv6 form of 127.0.0.1, a loopback address"),
    # Beyond the list: other spellings of the same places.
    ("https://0x7f.0.0.1/", "not a dotted quad"),
    ("https://10.1/", "not a dotted quad"),
    ("https://127.0.0.1./", "a loopback address"),
    ("https://LOCALHOST./", "localhost"),
    ("https://hooks.localhost/", "localhost"),
    ("https://partner.example\\@127.0.0.1/", "user name or password"),
    ("ftp://example.com/", "the scheme 'ftp' is not allowed"),
    ("https://[fe80::1%25eth0]/", "zone identifier"),
    ("https://255.255.255.255/", "the broadcast address"),
    ("https://240.0.0.1/", "a reserved address"),
    ("https://0.1.2.3/", "a 'this network' address"),
    ("https://[ff02::1]/", "a multicast address"),
    ("https://example.com:0/", "the port 0 is out of range"),
    ("https://example.com:65536/", "the port 65536 is out of range"),
    ("https://example.com/" + "a" * 2048, "longer than 2048"),
    ("https:///hook", "no host"),
    ("//example.com/", "no scheme"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=re.escape(reason)):
        check_url(url, NOTHING)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://partner.example/hooks/kehu", ("https", "partner.example", 443)),
        ("https://Partner.Example:8443/", ("https", "partner.example", 8443)),
        (f"https://{PUBLIC_IP}/", ("https", PUBLIC_IP, 443)),
        (
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            ("https", "2606:2800:220:1:248:1893:25c8:1946", 443),
        ),
        ("https://[::ffff:93.184.216.34]/", ("https", "::ffff:93.184.216.34", 443)),
        ("https://bücher.example/", ("https", "xn--bcher-kva.example", 443)),
        ("https://10.example/", ("https", "10.example", 443)),
    ],
)
def test_check_url_accepts_public_targets(url: str, expected: tuple[str, str, int]) -> None:
    assert check_url(url, NOTHING) == expected


def test_http_only_when_allowed() -> None:
    assert check_url("http://partner.example/", HTTP_ONLY) == ("http", "partner.example", 80)
    with pytest.raises(TargetRefused, match="a loopback address"):
        check_url("http://127.0.0.1/", HTTP_ONLY)


def test_allow_nets_let_an_internal_range_through() -> None:
    assert check_url("http://127.0.0.1:8080/hook", LOCAL) == ("http", "127.0.0.1", 8080)
    check_address("127.0.0.1", LOCAL)
    check_address("::ffff:127.0.0.1", LOCAL)  # the embedded IPv4 is what counts
    with pytest.raises(TargetRefused, match=re.escape("10.0.0.1 is a private address")):
        check_address("10.0.0.1", LOCAL)
    with pytest.raises(TargetRefused, match="loopback"):
        check_address("::1", LOCAL)
    v6 = TargetPolicy(allow_nets=(ipaddress.ip_network("fc00::/7"),))
    check_address(ipaddress.ip_address("fd12::1"), v6)


def test_check_address() -> None:
    check_address(PUBLIC_IP, NOTHING)
    check_address(f"::ffff:{PUBLIC_IP}", NOTHING)
    check_address("2606:2800:220:1:248:1893:25c8:1946", NOTHING)
    with pytest.raises(TargetRefused, match="a documentation address"):
        check_address("192.0.2.1", NOTHING)
    with pytest.raises(TargetRefused, match="not an IP address"):
        check_address("partner.example", NOTHING)


async def test_resolve_checked_refuses_a_name_resolving_to_loopback() -> None:
    resolver = resolver_for({"partner.example": ["127.0.0.1"]})
    with pytest.raises(
        TargetRefused, match=re.escape("partner.example resolves to 127.0.0.1, a loopback address")
    ):
        await resolve_checked("partner.example", 443, NOTHING, resolver)


async def test_resolve_checked_passes_a_public_name() -> None:
    resolver = resolver_for({"partner.example": [PUBLIC_IP, PUBLIC_IP]})
    assert await resolve_checked("partner.example", 443, NOTHING, resolver) == [PUBLIC_IP]


async def test_resolve_checked_refuses_one_private_address_among_public_ones() -> None:
    resolver = resolver_for({"partner.example": [PUBLIC_IP, "10.0.0.1"]})
    with pytest.raises(TargetRefused, match=re.escape("resolves to 10.0.0.1, a private address")):
        await resolve_checked("partner.example", 443, NOTHING, resolver)


async def test_resolve_checked_refuses_what_cannot_be_resolved() -> None:
    with pytest.raises(TargetRefused, match="cannot be resolved"):
        await resolve_checked("unknown.example", 443, NOTHING, resolver_for({}))
    with pytest.raises(TargetRefused, match="cannot be resolved"):
        await resolve_checked("empty.example", 443, NOTHING, resolver_for({"empty.example": []}))


async def test_resolve_checked_checks_the_spelling_before_any_lookup() -> None:
    calls: list[str] = []
    resolver = resolver_for({"localhost": [PUBLIC_IP], "2130706433": [PUBLIC_IP]}, calls)
    for host in ("localhost", "2130706433", "::1"):
        with pytest.raises(TargetRefused):
            await resolve_checked(host, 443, NOTHING, resolver)
    assert await resolve_checked(PUBLIC_IP, 443, NOTHING, resolver) == [PUBLIC_IP]
    assert calls == []


async def test_the_system_resolver_returns_address_strings() -> None:
    # A numeric host: getaddrinfo answers without DNS.
    assert set(await asyncio.wait_for(ssrf._getaddrinfo("127.0.0.1", 80), TIMEOUT)) == {"127.0.0.1"}


def test_policy_from_settings() -> None:
    settings = Settings(
        _env_file=None, webhook_allow_nets=" 127.0.0.0/8, ::1/128 ", webhook_allow_http=True
    )
    assert TargetPolicy.from_settings(settings) == TargetPolicy(
        allow_nets=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
        allow_http=True,
    )
    assert TargetPolicy.from_settings(Settings(_env_file=None)) == NOTHING


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEHU_WEBHOOK_ALLOW_NETS", "10.0.0.0/8,fd00::/8")
    monkeypatch.setenv("KEHU_WEBHOOK_ALLOW_HTTP", "true")
    settings = Settings(_env_file=None)
    assert settings.webhook_allow_nets == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    ]
    assert settings.webhook_allow_http is True
    # Host bits set is a typo (10.0.0.1/8 for 10.0.0.0/8?), refused like garbage.
    for invalid in ("10.0.0.1/8", "not-a-network", "10.0.0.0/33"):
        monkeypatch.setenv("KEHU_WEBHOOK_ALLOW_NETS", invalid)
        with pytest.raises(pydantic.ValidationError, match="webhook_allow_nets"):
            Settings(_env_file=None)


# Real connections: a canary listener that must stay untouched, and a tiny HTTP server.


@dataclass
class Listener:
    port: int = 0
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def canary() -> AsyncIterator[Listener]:
    """A TCP listener on 127.0.0.1 that records every connection and byte; it closes a
    connection once the peer has been quiet for a moment (a TLS client waits for an answer)."""
    record = Listener()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record.connections += 1
        try:
            while chunk := await asyncio.wait_for(reader.read(65536), 0.5):
                record.received += chunk
                record.arrived.set()
        except TimeoutError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    record.port = server.sockets[0].getsockname()[1]
    async with server:
        yield record


async def assert_untouched(canary: Listener) -> None:
    """Send a sentinel and wait for the canary to record it: connections are accepted in order,
    so any earlier connection would have been counted by then."""
    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", canary.port), TIMEOUT)
    writer.write(b"sentinel")
    await writer.drain()
    while not canary.received.endswith(b"sentinel"):
        canary.arrived.clear()
        await asyncio.wait_for(canary.arrived.wait(), TIMEOUT)
    writer.close()
    assert canary.connections == 1
    assert bytes(canary.received) == b"sentinel"


@dataclass
class HTTPServer:
    port: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@pytest.fixture
async def http_server() -> AsyncIterator[HTTPServer]:
    """A one-request-per-connection HTTP/1.1 server on 127.0.0.1 recording (head, body)."""
    record = HTTPServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            body = await asyncio.wait_for(
                reader.readexactly(int(length[1]) if length else 0), TIMEOUT
            )
            record.requests.append((head, body))
            writer.write(record.response)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    record.port = server.sockets[0].getsockname()[1]
    async with server:
        yield record


def post(client: httpx.AsyncClient, url: str) -> Awaitable[httpx.Response]:
    return asyncio.wait_for(client.post(url, content=b'{"type":"customer.created"}'), TIMEOUT)


@pytest.mark.parametrize("policy", [NOTHING, HTTP_ONLY], ids=["nothing", "http"])
async def test_guarded_client_never_reaches_loopback(
    canary: Listener, policy: TargetPolicy
) -> None:
    resolver = resolver_for({"partner.example": ["127.0.0.1"]})
    transport = guarded_transport(policy, resolver=resolver)
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
        for url in (
            f"https://127.0.0.1:{canary.port}/",
            f"http://127.0.0.1:{canary.port}/",
            f"https://[::ffff:127.0.0.1]:{canary.port}/",
        ):
            with pytest.raises(TargetRefused):
                await post(client, url)
        # A name passes the URL check; the backend refuses it when it connects.
        with pytest.raises(TargetRefused, match=re.escape("partner.example resolves to 127.0.0.1")):
            await post(client, f"https://partner.example:{canary.port}/")
    await assert_untouched(canary)


async def test_guarded_backend_refuses_on_its_own(canary: Listener) -> None:
    backend = GuardedBackend(NOTHING, resolver_for({"partner.example": ["127.0.0.1"]}))
    for host in ("127.0.0.1", "::ffff:127.0.0.1", "partner.example", "localhost"):
        with pytest.raises(TargetRefused):
            await asyncio.wait_for(backend.connect_tcp(host, canary.port, timeout=1), TIMEOUT)
    with pytest.raises(TargetRefused, match="Unix sockets"):
        await backend.connect_unix_socket("/run/postgresql/.s.PGSQL.5432")
    await assert_untouched(canary)


async def test_dns_rebinding_is_refused_at_connect_time(canary: Listener) -> None:
    """The first answer (the check before sending) is public, the second (the connection's) is
    loopback: the connection resolves again and checks what it connects to."""
    calls: list[str] = []
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    url = f"https://partner.example:{canary.port}/"
    _, host, port = check_url(url, NOTHING)
    assert await resolve_checked(host, port, NOTHING, rebinding) == [PUBLIC_IP]
    transport = guarded_transport(NOTHING, resolver=rebinding)
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
        with pytest.raises(
            TargetRefused, match=re.escape("resolves to 127.0.0.1, a loopback address")
        ):
            await post(client, url)
    assert calls == ["partner.example", "partner.example"]
    await assert_untouched(canary)


async def test_allowed_delivery_reaches_a_real_server(http_server: HTTPServer) -> None:
    resolver = resolver_for({"partner.example": ["127.0.0.1"]})
    transport = guarded_transport(LOCAL, resolver=resolver)
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
        by_ip = await post(client, f"http://127.0.0.1:{http_server.port}/hooks/kehu")
        # No DNS here: the name is reachable only through the address the guard checked.
        by_name = await post(client, f"http://partner.example:{http_server.port}/hooks/kehu")
    assert (by_ip.status_code, by_ip.text) == (200, "ok")
    assert (by_name.status_code, by_name.text) == (200, "ok")
    assert [head.split(b"\r\n")[0] for head, _ in http_server.requests] == [
        b"POST /hooks/kehu HTTP/1.1"
    ] * 2
    assert f"Host: partner.example:{http_server.port}".encode() in http_server.requests[1][0]
    assert http_server.requests[1][1] == b'{"type":"customer.created"}'


async def test_tls_connects_to_the_checked_ip_with_the_partner_name_as_sni(
    canary: Listener,
) -> None:
    """The canary is no TLS server, but the ClientHello it records carries the server name."""
    transport = guarded_transport(LOCAL, resolver=resolver_for({"partner.example": ["127.0.0.1"]}))
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
        with pytest.raises(httpx.ConnectError):
            await post(client, f"https://partner.example:{canary.port}/")
    assert canary.connections == 1
    assert canary.received[:1] == b"\x16"  # a TLS handshake record
    assert b"partner.example" in canary.received
    assert b"127.0.0.1" not in canary.received


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        # An allowed address, but a URL check_url refuses: the transport checks every request.
        ("http://user:pw@127.0.0.1:{port}/again", "user name or password"),
    ],
)
async def test_a_redirect_is_checked_like_the_first_url(
    http_server: HTTPServer, location: str, reason: str
) -> None:
    http_server.response = (
        b"HTTP/1.1 307 Temporary Redirect\r\n"
        + f"Location: {location.format(port=http_server.port)}\r\n".encode()
        + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    transport = guarded_transport(LOCAL)
    async with httpx.AsyncClient(
        transport=transport, timeout=TIMEOUT, follow_redirects=True
    ) as client:
        with pytest.raises(TargetRefused, match=re.escape(reason)):
            await post(client, f"http://127.0.0.1:{http_server.port}/")
    assert len(http_server.requests) == 1


def test_no_proxy_around_the_guard() -> None:
    with pytest.raises(ValueError, match="no proxy"):
        guarded_transport(NOTHING, proxy="http://proxy.example:3128")
