"""The machine's own Redis (127.0.0.1:6379) for tests that only need a few keys of their own: a client that
skips the test (fails it under CI) when Redis does not answer, and a key prefix cleaned up afterwards."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import redis

from tests.support.db import skip_or_fail


def connect_or_skip(url: str, *, timeout: float = 10) -> redis.Redis:
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 5))
    try:
        client.ping()
    except redis.RedisError as err:
        skip_or_fail(f"Redis at {url} is not reachable: {type(err).__name__}: {err}")
    return client


@contextlib.contextmanager
def key_prefix(client: redis.Redis) -> Iterator[str]:
    """A key prefix of the test's own; every key under it is deleted afterwards."""
    name = f"reprint_test_{secrets.token_hex(6)}"
    yield name
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.unlink(*keys[start : start + 1000])
