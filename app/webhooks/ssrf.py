"""The SSRF guard for webhook deliveries: partners choose the URLs, so a URL (or a name it resolves
to) must never make Kehu talk to itself, its database, a cloud metadata service or anything else on
an internal network.

Three layers, each closing a hole the one before leaves open:

- ``check_url``: syntax only, no DNS (cheap enough for the moment a URL is registered): scheme,
  userinfo, port, ``localhost``, and literal IPs, including the numeric spellings (``2130706433``,
  ``0x7f.1``) that resolvers read as addresses although they are not dotted quads.
- ``resolve_checked``: every address a name resolves to must be allowed, not just one of them.
- ``guarded_transport``: an httpx2 transport whose network backend resolves and checks at connect
  time and then connects to the checked address itself, so a DNS answer that changes between a check
  and the connection (DNS rebinding) cannot reach an internal address.

A refusal is a ``TargetRefused``, also out of ``httpx.AsyncClient`` calls made with the guarded
transport: it is not an httpcore2 exception, so httpx2's ``map_httpcore_exceptions`` re-raises it
unchanged instead of turning it into a ``ConnectError``, and httpcore2 does not retry it (its
connection retries only ``ConnectError``/``ConnectTimeout``). A refusal is permanent, not a network
failure worth a retry, and callers that catch ``httpx.TransportError`` for retries do not catch it.
"""

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore2 as httpcore
import httpx2 as httpx

from app.core.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# ``resolver(host, port)`` returns IP address strings; tests inject one instead of real DNS.
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"https": 443, "http": 80}
# What httpx2 leaves in ``raw_host`` for a name: IDNA (punycode), so ASCII only. Anything else
# (percent-escapes, spaces) is no name a partner's server has.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
# WHATWG URL parsing (and inet_aton) read a host whose last label is a decimal or hex number as an
# IPv4 address in any of its forms: ``2130706433``, ``127.1``, ``0177.0.0.1``, ``0x7f.1``.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")

# First match names the reason. Python's ``is_global`` (the catch-all below) covers most of these
# too, but its tables change between patch releases and it calls multicast global.
_REFUSED_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), reason)
    for cidr, reason in (
        ("0.0.0.0/32", "the unspecified address"),
        ("0.0.0.0/8", "a 'this network' address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo address"),
        ("2001:db8::/32", "a documentation address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
# IPv6 forms that carry an IPv4 address in their last 32 bits: a host or a translator on the way
# delivers them to that IPv4 address, so it is the one to check.
_IPV4_IN_LAST_32_BITS = tuple(
    ipaddress.IPv6Network(cidr)
    for cidr in (
        "64:ff9b::/96",  # NAT64 (RFC 6052)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "::/96",  # IPv4-compatible (deprecated), :: and ::1 excepted below
    )
)


class TargetRefused(ValueError):
    """A webhook URL, or an address it resolves to, that Kehu must not deliver to; the message
    says why, in words fit for the partner who registered the URL."""


@dataclass(frozen=True)
class TargetPolicy:
    """What the guard lets through besides public addresses: ``allow_nets`` are internal ranges
    allowed anyway (a receiver on this host in development), ``allow_http`` permits plain HTTP."""

    allow_nets: tuple[IPNetwork, ...] = ()
    allow_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "TargetPolicy":
        return cls(
            allow_nets=tuple(settings.webhook_allow_nets), allow_http=settings.webhook_allow_http
        )


def check_url(url: str, policy: TargetPolicy) -> tuple[str, str, int]:
    """Refuse a URL by its syntax alone (no DNS) and return ``(scheme, host, port)``.

    It is parsed by httpx2, the client that delivers, so the host checked is the host connected
    to; a literal IP host is checked with ``check_address`` here. A name still needs
    ``resolve_checked`` (the guarded transport does it on every connection)."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    return _check_parsed(parsed, policy)


def check_address(ip: str | IPAddress, policy: TargetPolicy) -> None:
    """Raise ``TargetRefused`` unless ``ip`` is a public address or inside ``policy.allow_nets``."""
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip)
        except ValueError as exc:
            raise TargetRefused(f"{ip!r} is not an IP address") from exc
    reason = _refusal(ip, policy)
    if reason is not None:
        raise TargetRefused(f"{ip} is {reason}")


async def resolve_checked(
    host: str, port: int, policy: TargetPolicy, resolver: Resolver | None = None
) -> list[str]:
    """Resolve ``host`` and return its addresses, all of them checked.

    One refused address refuses the name: which of several addresses a connection uses is not ours
    to choose once the name is handed on, and an attacker's DNS can mix a public address with an
    internal one. A literal IP is checked and returned without a lookup."""
    literal = _check_host(host, policy)
    if literal is not None:
        return [str(literal)]
    try:
        found = await (resolver or _getaddrinfo)(host, port)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"{host} cannot be resolved ({exc})") from exc
    addresses = list(dict.fromkeys(found))
    if not addresses:
        raise TargetRefused(f"{host} cannot be resolved (no addresses)")
    for address in addresses:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError as exc:
            raise TargetRefused(f"{host} resolves to {address!r}, not an IP address") from exc
        reason = _refusal(parsed, policy)
        if reason is not None:
            raise TargetRefused(f"{host} resolves to {address}, {reason}")
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore2's network backend with the check where the socket is opened.

    ``connect_tcp`` resolves the name itself, checks every address and hands the wrapped backend a
    checked IP, never the name: a numeric address needs no DNS, so no second answer (DNS
    rebinding) can differ from the checked one.

    TLS still verifies the partner's name, not the IP: httpcore2 takes the TLS server name from the
    request's URL, not from the stream ``connect_tcp`` returns (``_async/connection.py``,
    ``AsyncHTTPConnection._connect``: ``"server_hostname": sni_hostname or
    self._origin.host.decode("ascii")``, then ``stream.start_tls(**kwargs)``), and the anyio
    stream passes it on as SNI and for the certificate check (``AnyIOStream.start_tls``:
    ``TLSStream.wrap(..., hostname=server_hostname)``, which calls ``ssl_context.wrap_bio(...,
    server_hostname=...)``). ``_origin`` is the request URL's host (httpx2 builds the httpcore2 URL
    from ``request.url.raw_host``).

    The resolution runs on asyncio (``loop.getaddrinfo``), as Kehu does; the wrapped backend is
    anyio's, which is what httpcore2's default ``AutoBackend`` picks under asyncio."""

    def __init__(
        self,
        policy: TargetPolicy,
        resolver: Resolver | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._backend = httpcore.AnyIOBackend() if backend is None else backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_checked(host, port, self._policy, self._resolver)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        # Every address here is checked, so falling back to the next one (a name with an IPv6
        # address this host cannot route to) is as safe as the first.
        for address in addresses[:-1]:
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError:
                continue
        return await self._backend.connect_tcp(
            addresses[-1], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("Unix sockets are local: webhooks go to TCP hosts only")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """Checks each request's URL (a redirect followed by the client is a new URL, possibly
    ``http://`` or with userinfo) before its connection pool, whose backend is a GuardedBackend,
    checks the addresses."""

    def __init__(self, policy: TargetPolicy, resolver: Resolver | None, **kwargs: Any) -> None:
        if kwargs.get("proxy") is not None or kwargs.get("uds") is not None:
            # Through a proxy, the proxy would resolve and connect: this guard would check only it.
            raise ValueError("the guarded transport connects directly: no proxy or uds")
        super().__init__(**kwargs)
        self._policy = policy
        # httpx2 offers no way to give its pool a network backend, and the pool passes its own to
        # every connection it creates (httpcore2 connection_pool.py, create_connection), so the
        # backend is swapped on the fresh pool; every other setting stays as httpx2 made it. Checked
        # first so that an upgrade renaming the attribute fails here instead of leaving it unguarded.
        if type(self._pool) is not httpcore.AsyncConnectionPool or not isinstance(
            getattr(self._pool, "_network_backend", None), httpcore.AsyncNetworkBackend
        ):
            raise RuntimeError("httpx2/httpcore2 internals changed: cannot install the SSRF guard")
        self._pool._network_backend = GuardedBackend(policy, resolver)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _check_parsed(request.url, self._policy)
        return await super().handle_async_request(request)


def guarded_transport(
    policy: TargetPolicy, *, resolver: Resolver | None = None, **kwargs: Any
) -> httpx.AsyncHTTPTransport:
    """An ``httpx.AsyncHTTPTransport`` (``kwargs`` are its own: ``verify``, ``limits``, ``http2``,
    ``retries``...) that refuses, with ``TargetRefused``, URLs ``check_url`` refuses and connections
    to addresses ``check_address`` refuses, checked at connect time on the address connected to.

    Give it to ``httpx.AsyncClient(transport=...)`` and no ``proxy``/``mounts`` there: a client
    with a transport of its own ignores the proxy environment variables, but explicit proxies or
    mounts would route around it."""
    return _GuardedTransport(policy, resolver, **kwargs)


def _check_parsed(url: httpx.URL, policy: TargetPolicy) -> tuple[str, str, int]:
    scheme = url.scheme
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if scheme not in allowed:
        raise TargetRefused(
            f"the scheme {scheme!r} is not allowed (only {' or '.join(allowed)})"
            if scheme
            else "the URL has no scheme"
        )
    if url.userinfo:
        # Credentials in a URL end up in logs, and ``https://trusted@evil/`` is a known way to
        # make a URL look like it goes somewhere else.
        raise TargetRefused("the URL carries a user name or password")
    host = url.raw_host.decode("ascii")
    if not host:
        raise TargetRefused("the URL has no host")
    port = _DEFAULT_PORTS[scheme] if url.port is None else url.port
    if not 1 <= port <= 65535:
        raise TargetRefused(f"the port {port} is out of range")
    _check_host(host, policy)
    return scheme, host, port


def _check_host(host: str, policy: TargetPolicy) -> IPAddress | None:
    """Refuse a host by its spelling; return it parsed if it is a literal IP (checked)."""
    # A trailing dot (fully qualified) names the same host: ``localhost.``, ``127.0.0.1.``.
    name = host.lower().removesuffix(".")
    if not name:
        raise TargetRefused("the URL has no host")
    if ":" in name:
        if "%" in name:
            # A zone names a local interface: only link-local addresses have one.
            raise TargetRefused(f"{host} has an IPv6 zone identifier")
        try:
            address: IPAddress = ipaddress.IPv6Address(name)
        except ValueError as exc:
            raise TargetRefused(f"{host!r} is not a valid IPv6 address") from exc
        check_address(address, policy)
        return address
    if not _HOST_NAME.fullmatch(name):
        raise TargetRefused(f"{host!r} is not a valid host name")
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        try:
            address = ipaddress.IPv4Address(name)
        except ValueError as exc:
            raise TargetRefused(
                f"{host} would be read as an IP address but is not a dotted quad"
            ) from exc
        check_address(address, policy)
        return address
    if name == "localhost" or name.endswith(".localhost"):
        # Resolved by the local resolver to loopback (RFC 6761), whatever DNS says.
        raise TargetRefused(f"{host} is this host (localhost)")
    return None


def _refusal(address: IPAddress, policy: TargetPolicy) -> str | None:
    """Why ``address`` is refused (a phrase such as "a loopback address"), or None if allowed."""
    if any(address in net for net in policy.allow_nets):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = _refusal(embedded, policy)
            return None if reason is None else f"an IPv6 form of {embedded}, {reason}"
    for net, reason in _REFUSED_RANGES:
        if address in net:
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    # :: and ::1 are the IPv6 unspecified and loopback addresses, not IPv4-compatible ones.
    if int(address) > 1 and any(address in net for net in _IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
