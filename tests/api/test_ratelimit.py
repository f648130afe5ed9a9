"""The per-key limiter's in-process sliding window."""

import pytest

from app.api.ratelimit import KeyRateLimiter, _LocalWindows
from app.core.errors import RateLimited


def test_local_window_allows_the_amount_then_refuses() -> None:
    windows = _LocalWindows(amount=3, seconds=60)
    results = [windows.hit("k", 120.0 + i)[0] for i in range(4)]
    assert results == [True, True, True, False]
    # Another key has its own budget.
    assert windows.hit("other", 124.0)[0] is True


def test_local_window_slides() -> None:
    windows = _LocalWindows(amount=4, seconds=60)
    for i in range(4):
        assert windows.hit("k", 60.0 + i)[0]
    # Half-way through the next window, half of the previous window's hits still count.
    allowed, remaining, _ = windows.hit("k", 150.0)
    assert allowed
    assert remaining == 1
    assert windows.hit("k", 150.5)[0] is True
    assert windows.hit("k", 151.0)[0] is False
    # Two windows later everything has expired.
    assert windows.hit("k", 300.0) == (True, 3, 60.0)


async def test_key_rate_limiter_raises_429_with_retry_after() -> None:
    limiter = KeyRateLimiter("2/minute", "memory://")
    await limiter.hit("key")
    headers = await limiter.hit("key")
    assert headers["RateLimit-Remaining"] == "0"
    with pytest.raises(RateLimited) as refused:
        await limiter.hit("key")
    assert int(refused.value.headers["Retry-After"]) >= 1


async def test_shared_redis_counters_refuse_over_the_limit() -> None:
    """The scaled-out path; runs where a Redis answers on 127.0.0.1:6379 (CI machines have one)."""
    import socket
    import uuid

    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", 6379)) != 0:
            pytest.skip("no Redis on 127.0.0.1:6379")
    first = KeyRateLimiter("2/minute", "redis://127.0.0.1:6379")
    second = KeyRateLimiter("2/minute", "redis://127.0.0.1:6379")  # another API process
    key = uuid.uuid4().hex
    await first.hit(key)
    assert (await second.hit(key))["RateLimit-Remaining"] == "0"
    with pytest.raises(RateLimited):
        await first.hit(key)
    costly = uuid.uuid4().hex
    with pytest.raises(RateLimited):
        await first.hit(costly, cost=3)
    assert (await second.hit(costly, cost=2))["RateLimit-Remaining"] == "0"
    with pytest.raises(RateLimited):
        await first.check(costly)


def test_local_window_weighs_costs() -> None:
    windows = _LocalWindows(amount=10, seconds=60)
    assert windows.hit("k", 120.0, cost=6)[:2] == (True, 4)
    assert windows.hit("k", 121.0, cost=5)[0] is False  # refused: nothing counted
    assert windows.test("k", 121.0, cost=4)[:2] == (True, 4)  # a test counts nothing either
    assert windows.hit("k", 122.0, cost=4)[:2] == (True, 0)


def test_graphql_operation_cost() -> None:
    from app.api.graphql.context import operation_cost

    aliased = (
        "mutation { "
        + " ".join(f"c{i}: deleteCustomer(id: 1) {{ customerId }}" for i in range(30))
        + " }"
    )
    assert operation_cost(aliased, None) == 150
    assert operation_cost("{ customers { edges { cursor } } node(id: 1) { id } }", None) == 2
    fragments = """
      query Q { ...A ...A a: customer(id: 1) { id } }
      fragment A on Query { x: customer(id: 2) { id } ...B }
      fragment B on Query { y: customer(id: 3) { id } ...A ... on Query { z: customer(id: 4) { id } } }
      mutation M { createCustomer(input: {}) { customer { id } } }
    """
    assert operation_cost(fragments, "Q") == 4  # a, x, y, z once each, however often spread
    assert operation_cost(fragments, "M") == 5
    assert operation_cost(fragments, None) == 1  # ambiguous: nothing will run
    assert operation_cost("mutation {", None) == 1
    assert operation_cost(None, None) == 1
