"""Fetch benchmark: 1,000 pages from a local server answering under 50 host names.

    python benchmarks/fetch_bench.py [--pages 1000] [--hosts 50] [--repeats 3] [--concurrency 16]
                                     [--per-host 2] [--gate local|redis] [--body-kb 20]

Reports pages/s (wall clock) and CPU ms per page of the fetch stage: the CPU time of this process,
which runs only the Fetcher (robots.txt, SSRF guard, politeness gate, streaming, caps). The server runs
in a separate process, so its CPU is not counted; on a small machine it competes for cores, so read
pages/s as a floor and CPU/page as the figure. Medians over the repeats; each repeat is a fresh Fetcher
(cold robots cache and connection pool), as a worker restart would be.

Host names ``h00.bench.test`` … ``h49.bench.test`` map to ``127.0.0.1`` … ``127.0.0.50`` through the
Fetcher's ``resolver`` hook; those answers go through the SSRF guard like DNS answers do, so the run
allow-lists ``127.0.0.0/8`` (and nothing else). The server binds those loopback addresses only.
``--gate redis`` uses the Redis host gate (REPRINT_REDIS_URL, a throwaway key prefix, deleted after).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import statistics
import time
from typing import Any

from pipeline.fetch.client import Fetcher
from pipeline.fetch.politeness import HostGate, LocalHostGate
from pipeline.settings import Settings
from pipeline.shared.host_gate import RedisHostGate

ROBOTS = b"User-agent: *\nAllow: /\n"


# ------------------------------------------------------------------------------------------ server


def _page(path: str, size: int) -> bytes:
    para = f"<p>Article {path}: the council met on Tuesday and voted on the budget for the coming year.</p>\n"
    head = f"<!doctype html><html><head><title>{path}</title></head><body><article>\n".encode()
    body = para.encode() * max(1, size // len(para))
    return head + body + b"</article></body></html>\n"


async def _serve(hosts: int, body_size: int, ready: Any, connections: Any) -> None:
    """Minimal HTTP/1.1 keep-alive server on 127.0.0.1..127.0.0.<hosts>, all on one port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with connections.get_lock():
            connections.value += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode("latin-1")
                if path == "/robots.txt":
                    data, ctype = ROBOTS, b"text/plain"
                else:
                    data, ctype = _page(path, body_size), b"text/html; charset=utf-8"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                    + str(len(data)).encode() + b"\r\n\r\n" + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    first = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = first.sockets[0].getsockname()[1]
    servers = [first]
    for i in range(2, hosts + 1):
        servers.append(await asyncio.start_server(handle, f"127.0.0.{i}", port, backlog=1024))
    ready.put(port)
    await asyncio.Event().wait()  # until terminated


def _server_main(hosts: int, body_size: int, ready: Any, connections: Any) -> None:
    try:
        import uvloop  # a faster server leaves more of the machine to the client being measured

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve(hosts, body_size, ready, connections))


# ------------------------------------------------------------------------------------------ client


def host_name(i: int) -> str:
    return f"h{i:02d}.bench.test"


async def _resolve(host: str, port: int) -> list[str]:
    """``hNN.bench.test`` → ``127.0.0.<NN+1>``; anything else does not exist."""
    if host.endswith(".bench.test") and host[1:3].isdigit():
        return [f"127.0.0.{int(host[1:3]) + 1}"]
    raise OSError(f"{host} is not a benchmark host")


async def run_once(args: argparse.Namespace, port: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, failures) for fetching ``args.pages`` pages once."""
    settings = Settings(
        fetch_allow_networks=["127.0.0.0/8"],
        fetch_concurrency=args.concurrency,
        fetch_per_host=args.per_host,
        fetch_host_delay=0.0,
        fetch_robots=True,
    )
    urls = [f"http://{host_name(i % args.hosts)}:{port}/article/{i}" for i in range(args.pages)]
    prefix = f"reprint_bench_{secrets.token_hex(4)}"
    gate: HostGate = RedisHostGate(settings.redis_url, prefix, lease=60.0) if args.gate == "redis" else LocalHostGate()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with Fetcher(settings, gate=gate, resolver=_resolve) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(url) for url in urls), return_exceptions=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await gate.aclose()
    if args.gate == "redis":
        import redis

        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.unlink(*keys)
        client.close()
    failures = [r for r in results if isinstance(r, BaseException) or r.status != 200]
    if failures:
        print(f"  {len(failures)} failures, first: {failures[0]!r}")
    return wall, cpu, len(failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--gate", choices=("local", "redis"), default="local")
    parser.add_argument("--body-kb", type=int, default=20)
    args = parser.parse_args()
    if not 1 <= args.hosts <= 100:
        parser.error("--hosts must be 1..100")

    ctx = multiprocessing.get_context("spawn")
    ready, connections = ctx.Queue(), ctx.Value("l", 0)
    server = ctx.Process(target=_server_main, args=(args.hosts, args.body_kb * 1024, ready, connections), daemon=True)
    server.start()
    try:
        port = ready.get(timeout=30)
        print(f"server on 127.0.0.1-{args.hosts}:{port}; {args.pages} pages over {args.hosts} hosts, "
              f"concurrency {args.concurrency}, per host {args.per_host}, gate {args.gate}, body {args.body_kb} KB")
        rates, cpus = [], []
        for repeat in range(args.repeats):
            before = connections.value
            wall, cpu, failed = asyncio.run(run_once(args, port))
            rates.append(args.pages / wall)
            cpus.append(cpu * 1000 / args.pages)
            print(f"  run {repeat + 1}: {args.pages / wall:7.1f} pages/s  {cpu * 1000 / args.pages:5.2f} CPU ms/page  "
                  f"wall {wall:5.2f}s  connections {connections.value - before}  failures {failed}")
        print(f"median: {statistics.median(rates):.1f} pages/s, {statistics.median(cpus):.2f} CPU ms/page "
              f"(fetch stage, this process; {args.hosts} robots.txt fetches included per run)")
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
