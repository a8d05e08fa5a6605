"""Benchmark of the shared Redis index: memory per article at N signatures, and atomic match+insert latency.

    python benchmarks/redis_index_bench.py --redis-url redis://127.0.0.1:6391/0 --n 1000000

Loads N synthetic signatures (random MinHash values: every band bucket distinct, the worst case for memory)
through the same Lua script the workers use, pipelined in batches; reports ``used_memory`` growth per article
next to the signature's own size, the encodings Redis chose for the bucket hashes, and then the client-side
latency of ``query_insert`` (hashing, round trip and script) over many calls, half of them near-duplicates of
indexed articles. Point it at a Redis nothing else is writing to (a private redis-server is best; another
client's writes would count as index memory); its keys are deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import time

import numpy as np
import redis

from pipeline.dedup.fingerprint import KINDS
from pipeline.records import Signature
from pipeline.shared.redis_index import DEFAULT_CAPACITY, RedisLSHIndex


def signatures(rng: np.random.Generator, count: int, num_perm: int) -> list[Signature]:
    block = rng.integers(0, 2**32, (count, len(KINDS), num_perm), dtype=np.uint32)
    return [Signature({kind: row[k] for k, kind in enumerate(KINDS)}, 150) for row in block]


def near_duplicate(sig: Signature, rng: np.random.Generator, rate: float = 0.2) -> Signature:
    values = {}
    for kind, arr in sig.values.items():
        fresh = rng.integers(0, 2**32, len(arr), dtype=np.uint32)
        values[kind] = np.where(rng.random(len(arr)) < rate, fresh, arr).astype(np.uint32)
    return Signature(values, sig.n_tokens)


def load_range(job: tuple[str, str, int, int, int, int, int, int]) -> int:
    """One loader process: ids [first, first + count) with random signatures, pipelined through the script."""
    url, prefix, num_perm, capacity, seed, first, count, batch = job
    rng = np.random.default_rng(seed)
    index = RedisLSHIndex(redis.Redis.from_url(url), num_perm, prefix, capacity=capacity)
    done = 0
    while done < count:
        step = min(10_000, count - done)
        ids = range(first + done, first + done + step)
        index.insert_many(zip(ids, signatures(rng, step, num_perm), strict=True), batch=batch)
        done += step
        if (first + done) % 100_000 < step:
            print(f"  loader from id {first:,}: {done:,}/{count:,}", flush=True)
    return done


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def encodings(client: redis.Redis, index: RedisLSHIndex, samples: int) -> tuple[dict[str, int], float]:
    """OBJECT ENCODING of sampled bucket hashes, and their mean number of fields."""
    counts: dict[str, int] = {}
    lengths: list[int] = []
    for key in client.scan_iter(match=f"{index.ns}:b:*", count=1000):
        kind = client.type(key).decode()
        if kind != "hash":
            continue
        enc = client.object("encoding", key)
        enc = enc.decode() if isinstance(enc, bytes) else str(enc)
        counts[enc] = counts.get(enc, 0) + 1
        lengths.append(int(client.hlen(key)))
        if len(lengths) >= samples:
            break
    return counts, float(np.mean(lengths)) if lengths else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--n", type=int, default=1_000_000, help="signatures to load")
    parser.add_argument("--capacity", type=int, default=DEFAULT_CAPACITY, help="index capacity (sets shard bits)")
    parser.add_argument("--batch", type=int, default=1000, help="scripts per pipelined round trip when loading")
    parser.add_argument("--loaders", type=int, default=2, help="loader processes for the bulk load")
    parser.add_argument("--calls", type=int, default=10_000, help="timed query_insert calls")
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="leave the index in Redis")
    parser.add_argument("--reuse", metavar="PREFIX", help="time calls against an index left by --keep; no load")
    args = parser.parse_args()

    client = redis.Redis.from_url(args.redis_url)
    prefix = args.reuse or f"bench{secrets.token_hex(1)}"  # as long as the default "reprint": key names cost memory too
    rng = np.random.default_rng(args.seed)
    before = used_memory(client)
    index = RedisLSHIndex(client, args.num_perm, prefix, capacity=args.capacity)
    print(f"redis {client.info('server')['redis_version']} at {args.redis_url}; prefix {prefix}")
    print(f"layout: {index.layout}; {index.bands_per_article} band buckets per article")
    lp = client.config_get("hash-max-listpack-*")
    print(f"server: hash-max-listpack-entries={lp.get('hash-max-listpack-entries')} "
          f"hash-max-listpack-value={lp.get('hash-max-listpack-value')}")

    kept: list[tuple[int, Signature]] = []
    try:
        if args.reuse:
            rng = np.random.default_rng()  # fresh signatures: the seeded ones are already in the index
            args.n = len(index)
            kept = [(0, sig) for sig in signatures(rng, 1000, args.num_perm)]
            index.insert_many(((args.n + 1 + i, sig) for i, (_z, sig) in enumerate(kept)))
            args.n += len(kept)
            print(f"reusing {args.n:,} indexed articles (1,000 just added as near-duplicate bases)")
        start = time.perf_counter()
        if not args.reuse:
            n_kept = min(5000, args.n)
            bulk = args.n - n_kept
            loaders = max(1, min(args.loaders, bulk // 10_000 or 1))
            bounds = [bulk * k // loaders for k in range(loaders + 1)]
            jobs = [(args.redis_url, prefix, args.num_perm, args.capacity, args.seed + 1 + k, bounds[k] + 1,
                     bounds[k + 1] - bounds[k], args.batch) for k in range(loaders)]
            if bulk:
                with mp.get_context("spawn").Pool(loaders) as pool:
                    for _ in pool.imap_unordered(load_range, jobs):
                        pass
            # the last articles, loaded here and kept: the timed calls include near-duplicates of them
            kept = list(zip(range(bulk + 1, args.n + 1), signatures(rng, n_kept, args.num_perm), strict=True))
            index.insert_many(kept, batch=args.batch)
            load_s = time.perf_counter() - start
            assert len(index) == args.n, (len(index), args.n)
            after = used_memory(client)
            per_article = (after - before) / args.n
            signature_bytes = len(KINDS) * args.num_perm * 4
            dbsize = client.dbsize()
            enc, mean_fields = encodings(client, index, 2000)
            print(f"\nloaded {args.n:,} signatures in {load_s:,.0f} s ({args.n / load_s:,.0f}/s)")
            print(f"used_memory delta: {(after - before) / 2**20:,.1f} MiB = {per_article:,.0f} bytes per article")
            print(f"signature (not stored in Redis; {len(KINDS)} kinds x {args.num_perm} x uint32): "
                  f"{signature_bytes} bytes")
            print(f"keys in db: {dbsize:,} ({dbsize / args.n:.2f} per article); sampled bucket hashes: {enc}, "
                  f"mean {mean_fields:.1f} fields")

        client.config_resetstat()
        slowlog = client.config_get("slowlog-*")
        # the scripts take >= 50 µs, the commands they call ~1 µs: log the scripts, not what they call
        client.config_set("slowlog-log-slower-than", 20)
        client.config_set("slowlog-max-len", 4 * args.calls)  # room for the odd slow command inside a script
        client.slowlog_reset()
        timings = np.empty(args.calls)
        next_id = args.n + 1
        for call in range(args.calls):
            if call % 2 == 0:
                _orig, base = kept[(call // 2) % len(kept)]
                sig = near_duplicate(base, rng)
            else:
                sig = signatures(rng, 1, args.num_perm)[0]
            t0 = time.perf_counter()
            found = index.query_insert(next_id, sig)
            timings[call] = time.perf_counter() - t0
            next_id += 1
            if call == 0:
                assert found, "a near-duplicate of an indexed article found nothing"
        server = client.info("commandstats").get("cmdstat_evalsha", {})
        entries = client.slowlog_get(4 * args.calls)
        for name, value in slowlog.items():
            client.config_set(name, value)
        script_us = np.array([e["duration"] for e in entries if b"EVALSHA" in (e["command"] or b"").upper()[:8]])
        p50, p99, p999 = np.percentile(timings, [50, 99, 99.9]) * 1e3
        print(f"\natomic query_insert over {args.calls:,} calls at {args.n:,} articles (client side: hashing + "
              f"round trip + script):")
        print(f"  p50 {p50:.3f} ms   p99 {p99:.3f} ms   p99.9 {p999:.3f} ms   max {timings.max() * 1e3:.3f} ms   "
              f"mean {timings.mean() * 1e3:.3f} ms")
        if server:
            print(f"  server-side script time: {server['usec_per_call']:.0f} µs per call (commandstats mean)")
        if len(script_us):
            s50, s99, s999 = np.percentile(script_us, [50, 99, 99.9])
            print(f"  server-side script time from SLOWLOG over {len(script_us):,} calls: p50 {s50:.0f} µs   "
                  f"p99 {s99:.0f} µs   p99.9 {s999:.0f} µs   max {script_us.max():.0f} µs")
        load1, load5, _load15 = os.getloadavg()
        print(f"  host: {os.cpu_count()} CPUs, load average {load1:.2f} (1 min) {load5:.2f} (5 min) at the end")
    finally:
        if not (args.keep or args.reuse):
            t0 = time.perf_counter()
            index.drop()
            print(f"index deleted in {time.perf_counter() - t0:,.0f} s")


if __name__ == "__main__":
    main()
