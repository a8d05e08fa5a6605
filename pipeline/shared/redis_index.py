"""Match stage, distributed: a MinHash-LSH index shared by every worker, held in Redis.

Why not datasketch's Redis storage: its query and its insert are separate round trips, so two near-duplicates
arriving at the same instant on two workers can each query before the other inserts; neither sees the other
and the pair ends with two canonicals (measured: up to 98% of simultaneous pairs). Here query-and-insert is
ONE Lua script: Redis runs a script to completion before any other command, so of two racing articles the
second always finds the first in the buckets.

Banding is the same as :class:`pipeline.dedup.index.LSHIndex` (same kinds, bands and rows per band; band ``i`` of a
kind is rows ``[i*r, (i+1)*r)`` of that kind's values), so both deployments see the same candidates: two
articles collide in a band exactly when the band's rows are equal (up to the hash collisions quantified below,
which can only add a candidate, never lose one, and every candidate is verified anyway), and buckets are
capped the same way (a full bucket keeps its first ``cap`` members; ``pipeline.dedup.index`` says why).

Key layout, chosen for memory: a Redis key costs ~100 bytes of overhead, an entry in a small (listpack) hash
~11, and an article has 96 band buckets, so buckets are fields of shared hashes, not keys. A listpack is read
entry by entry, though, and the script's time is mostly those reads. Measured with
``benchmarks/redis_index_bench.py`` at 1M articles: with ~46 fields a hash, match+insert took 746 µs of server
time at the median and 2.0 ms client-side at p99 (1,381 bytes an article); with ~23 (one more shard bit) 537 µs
and 1.25 ms, for 1,607 bytes an article (4.2 keys an article), against the signature's own 1,024 bytes (which
Redis does not hold). Every key is under ``{prefix}:idx:`` so the index can share ``settings.redis_prefix``
with queues, locks and dead letters (``clear`` deletes only its own keys); ``ns`` below is ``{prefix}:idx``.

``{ns}:layout``
    string ``v1 bits=<B> field=<F> perm=<P> kinds=w3:64x2,c1:32x3``, written once (SET NX) by the first
    index; later ones adopt it, so every worker addresses buckets the same way.
``{ns}:n``
    number of indexed articles (``len``).
``{ns}:r:<id // 128>``
    registry hash, field ``id % 128`` → ``1``: ``in``, idempotent inserts (a redelivered task indexes once).
``{ns}:b:<shard hex>``
    bucket hash. Every band of every kind is hashed, ``h = xxh64(row values as little-endian uint32,
    seed=kind_index << 16 | band)``; the top ``B`` bits of ``h`` pick the shard, the next ``8*F`` bits, as
    ``F`` raw bytes, are the field. The value is the member ids, comma-separated (a single id is stored by
    Redis as an integer). With ~50 fields per shard the hash stays a listpack (the compact encoding, limit
    ``hash-max-listpack-entries`` = 128 by default), so a bucket entry costs ~12 bytes instead of a key.
``{ns}:b:<shard hex>:<field>``
    overflow set for a bucket whose id list outgrew ``INLINE_MAX`` bytes (a big syndication cluster); the
    hash field then holds ``+``. Integer ids make it an intset (4 bytes a member).

``B`` is chosen from ``capacity`` (default 1M articles: B = 22, ~23 fields per shard at capacity; an index made
before holds its own B = 21 in its layout, and keeps it); an index grown to ~5x its capacity still works, but
its shards turn into hashtable encoding (past ``hash-max-listpack-entries``, 128 by default) and cost ~4x more
per entry: rebuild with a larger capacity (and a new prefix) then. With ``F`` = 4 each bucket is addressed by
``B + 32`` bits of the hash: a band falsely shares a bucket with probability ~(fields in a shard) / 2**32, so
at 1M articles a query gets one spurious candidate about once in a million queries.

The index stores no signatures (the store has them): ``remove`` needs the article's signature, and
``rebuild`` reads them from the store. Redis Cluster is not supported: the atomic script touches buckets all
over the keyspace, so the index must live on one primary (the scripts build the bucket key names themselves
from packed arguments, see below). Article ids must be non-negative integers (they are the store's ids).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import xxhash

from pipeline.dedup.fingerprint import KINDS
from pipeline.dedup.index import BUCKET_CAP
from pipeline.records import Signature
from pipeline.shared import keys

if TYPE_CHECKING:
    import redis

    from pipeline.settings import Settings
    from pipeline.store import Store

LAYOUT_VERSION = "v1"
DEFAULT_CAPACITY = 1 << 20
FIELD_BYTES = 4
REGISTRY_SPAN = 128  # registry fields per hash: at most hash-max-listpack-entries (128 by default)
INLINE_MAX = 56  # bytes of comma-separated ids kept in the hash field; hash-max-listpack-value is 64
TARGET_PER_SHARD = 32  # mean fields per bucket hash at capacity (module doc: why not more)

# The bands' bucket addresses travel packed in two arguments (shard numbers in hex, fields as raw bytes, fixed
# widths) rather than as ~200 separate ones: it halves the client's encoding time and the server's parsing.
# KEYS: registry hash, counter.  ARGV: id, mode, registry field, inline max, bucket key prefix, shards (hex),
# fields (raw), shard width, field width.  mode: "qi" query then insert, "q" query only, "i" insert only.
# Returns the distinct ids found.
_QUERY_INSERT = """
local id = ARGV[1]
local mode = ARGV[2]
local limit = tonumber(ARGV[4])
local kp, shards, fields = ARGV[5], ARGV[6], ARGV[7]
local sw, fw = tonumber(ARGV[8]), tonumber(ARGV[9])
local cap = tonumber(ARGV[10])
local query = mode ~= 'i'
local write = mode ~= 'q'
if write and redis.call('HSETNX', KEYS[1], ARGV[3], 1) == 0 then
  write = false
  if not query then return {} end
end
if write then redis.call('INCR', KEYS[2]) end
local seen = {}
local out = {}
local function found(m)
  if not seen[m] and not (write and m == id) then
    seen[m] = true
    out[#out + 1] = m
  end
end
local function append(key, field, v)
  if v == '+' then
    redis.call('SADD', key .. ':' .. field, id)
    return
  end
  local nv = v .. ',' .. id
  if #nv > limit then
    local members = {}
    for m in string.gmatch(nv, '%d+') do members[#members + 1] = m end
    redis.call('SADD', key .. ':' .. field, unpack(members))
    redis.call('HSET', key, field, '+')
  else
    redis.call('HSET', key, field, nv)
  end
end
for j = 0, #fields / fw - 1 do
  local key = kp .. string.sub(shards, j * sw + 1, (j + 1) * sw)
  local field = string.sub(fields, j * fw + 1, (j + 1) * fw)
  -- Writing, an empty bucket (by far the most common case) costs one command: HSETNX creates it or says
  -- it is taken; only then are its members read (they cannot include this id yet) and the id appended.
  local v = false
  if write then
    if redis.call('HSETNX', key, field, id) == 0 then v = redis.call('HGET', key, field) end
  else
    v = redis.call('HGET', key, field)
  end
  if v then
    if query then
      if v == '+' then
        for _, m in ipairs(redis.call('SMEMBERS', key .. ':' .. field)) do found(m) end
      else
        for m in string.gmatch(v, '%d+') do found(m) end
      end
    end
    if write then
      -- a full bucket keeps its members: the story they share is found through them (capped buckets)
      local held
      if v == '+' then held = redis.call('SCARD', key .. ':' .. field)
      else held = select(2, string.gsub(v, ',', ',')) + 1 end
      if cap == 0 or held < cap then append(key, field, v) end
    end
  end
end
return out
"""

# KEYS: registry hash, counter.  ARGV: id, registry field, then as above: bucket key prefix, shards, fields,
# shard width, field width.  Returns 1 if the article was indexed and is now removed.
_REMOVE = """
local id = ARGV[1]
local kp, shards, fields = ARGV[3], ARGV[4], ARGV[5]
local sw, fw = tonumber(ARGV[6]), tonumber(ARGV[7])
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('DECR', KEYS[2])
for j = 0, #fields / fw - 1 do
  local key = kp .. string.sub(shards, j * sw + 1, (j + 1) * sw)
  local field = string.sub(fields, j * fw + 1, (j + 1) * fw)
  local v = redis.call('HGET', key, field)
  if v == '+' then
    local overflow = key .. ':' .. field
    redis.call('SREM', overflow, id)
    if redis.call('SCARD', overflow) == 0 then
      redis.call('DEL', overflow)
      redis.call('HDEL', key, field)
    end
  elseif v then
    local rest = {}
    for m in string.gmatch(v, '%d+') do
      if m ~= id then rest[#rest + 1] = m end
    end
    if #rest == 0 then
      redis.call('HDEL', key, field)
    else
      redis.call('HSET', key, field, table.concat(rest, ','))
    end
  end
end
return 1
"""


def _unlink_matching(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching ``pattern`` (SCAN, then UNLINK a thousand at a time); returns how many went."""
    deleted = 0
    chunk: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        chunk.append(key)
        if len(chunk) >= 1000:
            deleted += client.unlink(*chunk)
            chunk = []
    if chunk:
        deleted += client.unlink(*chunk)
    return deleted


def shard_bits_for(capacity: int, bands_per_article: int) -> int:
    """Shard bits so that an index of ``capacity`` articles has ~TARGET_PER_SHARD bucket fields per hash."""
    buckets = max(1, capacity) * bands_per_article
    return min(32, max(4, math.ceil(math.log2(buckets / TARGET_PER_SHARD))))


def _kinds_spec() -> str:
    return ",".join(f"{kind}:{bands}x{rows}" for kind, (_n, bands, rows) in KINDS.items())


class RedisLSHIndex:
    """A MinHash-LSH index in Redis whose query-then-insert is one atomic Lua script (see the module doc)."""

    def __init__(
        self,
        client: redis.Redis,
        num_perm: int = 128,
        prefix: str = "reprint",
        *,
        capacity: int = DEFAULT_CAPACITY,
        cap: int | None = BUCKET_CAP,
    ) -> None:
        """``cap``: articles a bucket keeps (as ``pipeline.dedup.index``; None: no cap)."""
        for kind, (_n, bands, rows) in KINDS.items():
            if bands * rows > num_perm:
                raise ValueError(f"kind {kind}: {bands} bands x {rows} rows exceed num_perm={num_perm}")
        self.client = client
        self.num_perm = num_perm
        self.prefix = prefix
        self.cap = cap
        self.ns = keys.index_namespace(prefix)
        self._kinds = [(kind, index, bands, rows) for index, (kind, (_n, bands, rows)) in enumerate(KINDS.items())]
        self.bands_per_article = sum(bands for _k, _i, bands, _r in self._kinds)
        self.shard_bits, self.field_bytes = self._adopt_layout(capacity)
        self._field_shift = 64 - self.shard_bits - 8 * self.field_bytes
        self._field_mask = (1 << (8 * self.field_bytes)) - 1
        self._count_key = f"{self.ns}:n"
        self._bucket_prefix = f"{self.ns}:b:"
        self._shard_bytes = (self.shard_bits + 7) // 8
        self._query_insert = client.register_script(_QUERY_INSERT)
        self._remove = client.register_script(_REMOVE)

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis | None = None) -> RedisLSHIndex:
        """The index a worker uses: ``settings.redis_url`` (or the given client) under ``settings.redis_prefix``."""
        if client is None:
            import redis as redis_module

            client = redis_module.Redis.from_url(settings.redis_url)
        return cls(client, settings.num_perm, settings.redis_prefix)

    @classmethod
    def replacing(cls, settings: Settings, client: redis.Redis | None = None) -> RedisLSHIndex:
        """``from_settings`` on an emptied namespace: whatever index was there (of any layout: one made for another
        fingerprint version, ``reprint index refingerprint``) is deleted first. For ``rebuild``."""
        if client is None:
            import redis as redis_module

            client = redis_module.Redis.from_url(settings.redis_url)
        _unlink_matching(client, f"{keys.index_namespace(settings.redis_prefix)}:*")
        return cls.from_settings(settings, client)

    # layout ----------------------------------------------------------------------------------
    def _adopt_layout(self, capacity: int) -> tuple[int, int]:
        """The layout every worker on this prefix uses: the first index writes it, later ones read it.

        Bucket addresses depend on the shard bits, so two workers with different capacities must not each
        pick their own; a layout written for other signature parameters is an error, not a silent mismatch.
        """
        bits = shard_bits_for(capacity, self.bands_per_article)
        mine = f"{LAYOUT_VERSION} bits={bits} field={FIELD_BYTES} perm={self.num_perm} kinds={_kinds_spec()}"
        key = f"{self.ns}:layout"
        self.client.set(key, mine, nx=True)
        stored = self.client.get(key)
        text = stored.decode() if isinstance(stored, bytes) else str(stored)
        parts = dict(p.split("=", 1) for p in text.split()[1:])
        if not text.startswith(LAYOUT_VERSION + " ") or parts.get("perm") != str(self.num_perm) or (
            parts.get("kinds") != _kinds_spec()
        ):
            raise ValueError(f"index {self.prefix!r} was built with another layout: {text!r}; expected {mine!r} "
                             "(`reprint index rebuild` re-creates it from the store)")
        return int(parts["bits"]), int(parts["field"])

    @property
    def layout(self) -> str:
        """The stored layout string (for logs and the benchmark)."""
        value = self.client.get(f"{self.ns}:layout")
        return value.decode() if isinstance(value, bytes) else str(value)

    # addressing ------------------------------------------------------------------------------
    def _registry(self, article_id: int) -> tuple[str, int]:
        return f"{self.ns}:r:{article_id // REGISTRY_SPAN}", article_id % REGISTRY_SPAN

    def _packed(self, sig: Signature) -> tuple[str, bytes]:
        """Bucket addresses of every band of every kind the signature has, in a fixed order, packed.

        Returns the shard numbers as one hex string (``2 * shard_bytes`` digits each) and the fields as one
        byte string (``field_bytes`` each): the form the scripts take them in.
        """
        hashes: list[int] = []
        for kind, kind_index, bands, rows in self._kinds:
            values = sig.values.get(kind)
            if values is None:
                continue
            if len(values) != self.num_perm:
                raise ValueError(f"signature kind {kind} has {len(values)} values, index expects {self.num_perm}")
            data = np.ascontiguousarray(values, dtype="<u4").tobytes()
            step = 4 * rows
            for band in range(bands):
                hashes.append(xxhash.xxh64_intdigest(data[band * step : (band + 1) * step],
                                                     seed=(kind_index << 16) | band))
        h = np.array(hashes, dtype=np.uint64)
        shard = (h >> np.uint64(64 - self.shard_bits)).astype(">u8").view(np.uint8).reshape(-1, 8)
        field = ((h >> np.uint64(self._field_shift)) & np.uint64(self._field_mask)).astype(">u8")
        field_bytes = field.view(np.uint8).reshape(-1, 8)[:, 8 - self.field_bytes :]
        return shard[:, 8 - self._shard_bytes :].tobytes().hex(), field_bytes.tobytes()

    def buckets(self, sig: Signature) -> list[tuple[str, bytes]]:
        """(bucket hash key, field) of every band of every kind the signature has: for inspection and tests."""
        shards, fields = self._packed(sig)
        sw, fw = 2 * self._shard_bytes, self.field_bytes
        return [(f"{self.ns}:b:{shards[j * sw : (j + 1) * sw]}", fields[j * fw : (j + 1) * fw])
                for j in range(len(fields) // fw)]

    def _tail(self, sig: Signature) -> list[object]:
        shards, fields = self._packed(sig)
        return [self._bucket_prefix, shards, fields, 2 * self._shard_bytes, self.field_bytes]

    def _call(self, mode: str, article_id: int, sig: Signature, client: object = None) -> list[bytes]:
        if article_id < 0:
            raise ValueError(f"article ids are non-negative integers, got {article_id}")
        registry, slot = self._registry(article_id)
        return self._query_insert(
            keys=[registry, self._count_key],
            args=[article_id, mode, slot, INLINE_MAX, *self._tail(sig), self.cap or 0],
            client=client,
        )

    # the CandidateIndex protocol and the LSHIndex surface ------------------------------------
    def query_insert(self, article_id: int, sig: Signature) -> set[int]:
        """Candidates for a new article, then the article indexed: one script, atomic across workers.

        An article already indexed (a redelivered task) is not indexed twice; its candidates are still
        returned (itself included, as ``LSHIndex`` does).
        """
        return {int(m) for m in self._call("qi", int(article_id), sig)}

    def query(self, sig: Signature) -> set[int]:
        """Every indexed article that shares a band bucket with the signature in any kind."""
        return {int(m) for m in self._call("q", 0, sig)}

    def insert(self, article_id: int, sig: Signature) -> None:
        """Index an article (idempotent)."""
        self._call("i", int(article_id), sig)

    def insert_many(self, items: Iterable[tuple[int, Signature]], batch: int = 1000) -> int:
        """Index many articles, ``batch`` scripts per pipelined round trip (rebuilds, bulk loads)."""
        count = 0
        pipe = self.client.pipeline(transaction=False)
        for article_id, sig in items:
            self._call("i", int(article_id), sig, client=pipe)
            count += 1
            if count % batch == 0:
                pipe.execute()
        pipe.execute()
        return count

    def remove(self, article_id: int, sig: Signature) -> bool:
        """Drop an article from its buckets; True if it was indexed.

        The signature is required because the index keeps no per-article list of buckets (that would cost
        ~500 bytes an article for a rare operation); the store holds every signature.
        """
        registry, slot = self._registry(int(article_id))
        return bool(self._remove(keys=[registry, self._count_key], args=[int(article_id), slot, *self._tail(sig)]))

    def __contains__(self, article_id: object) -> bool:
        if not isinstance(article_id, int | np.integer):
            return False
        registry, slot = self._registry(int(article_id))
        return bool(self.client.hexists(registry, slot))

    def __len__(self) -> int:
        return int(self.client.get(self._count_key) or 0)

    # maintenance -----------------------------------------------------------------------------
    def clear(self) -> int:
        """Delete every key of this index except its layout; returns how many keys went.

        Only ``{ns}:*`` is scanned, so other data under the same prefix (queues, locks) is left alone.
        """
        deleted = _unlink_matching(self.client, f"{self.ns}:b:*") + _unlink_matching(self.client, f"{self.ns}:r:*")
        return deleted + int(self.client.unlink(self._count_key))

    def drop(self) -> None:
        """Delete the index entirely, layout included (tests, benchmarks, a rebuild with a new capacity)."""
        self.clear()
        self.client.unlink(f"{self.ns}:layout")

    def rebuild(self, store: Store, *, min_tokens: int | None = None, batch: int = 1000) -> int:
        """Empty the index and re-index every stored signature with at least ``min_tokens`` tokens.

        For recovery after Redis lost its data. ``min_tokens`` defaults to the setting, because the dedup
        stage never indexes shorter articles and a rebuilt index must hold exactly what it would have. Run it
        while no worker is adding articles: an article added during the rebuild may be cleared after it was
        indexed (re-running the rebuild fixes that).
        """
        if min_tokens is None:
            from pipeline.settings import get_settings

            min_tokens = get_settings().min_tokens
        self.clear()
        return self.insert_many(
            ((article_id, sig) for article_id, sig in store.signatures() if sig.n_tokens >= min_tokens),
            batch=batch,
        )
