"""One settings object for the whole system, read from ``REPRINT_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.extract.limits import ExtractLimits

_HOST_NAME = re.compile(r"^(?=.{1,253}$)[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)*$")


AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/reprint``, else ``~/.cache/reprint``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "reprint"


def broker_transport(url: str) -> str:
    """``"amqp"`` or ``"redis"`` for a broker URL; a ValueError that names both choices otherwise."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in AMQP_SCHEMES:
        return "amqp"
    if scheme in REDIS_SCHEMES:
        return "redis"
    raise ValueError(f"broker_url must be an amqp:// (RabbitMQ) or redis:// URL, not {url.split('@')[-1]!r}")


class Settings(BaseSettings):
    """Every tunable of reprint. Environment variables are the upper-cased names with ``REPRINT_``."""

    model_config = SettingsConfigDict(env_prefix="REPRINT_", extra="ignore")

    # storage
    database_url: str = "sqlite:///reprint.db"
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="files reprint derives once per machine and reuses (wordfreq's lists compiled for lookup); "
        "safe to delete",
    )

    # distributed deployment (workers/: Celery). Embedded runs never read these.
    broker_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Celery broker: amqp://user:pass@host:5672/vhost (RabbitMQ, recommended: a dead worker's tasks "
        "come back at once) or redis://host:6379/0 (they come back after visibility_timeout)",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="shared index, locks, run state, dead letters")
    redis_prefix: str = Field("reprint", min_length=1, description="prefix of every reprint key in Redis")
    task_soft_time_limit: float = Field(300.0, gt=0, description="seconds before a task gets SoftTimeLimitExceeded")
    task_time_limit: float = Field(360.0, gt=0, description="seconds before a task's worker process is killed")
    task_max_retries: int = Field(5, ge=0, description="Celery-level retries of a transient fetch failure")
    task_retry_backoff: float = Field(2.0, gt=0, description="first Celery retry delay in seconds; doubles")
    task_retry_backoff_max: float = Field(300.0, gt=0, description="cap on one Celery retry delay")
    visibility_timeout: float = Field(
        1200.0, gt=0,
        description="seconds an unacknowledged message waits before Redis hands it to another worker; must "
        "exceed task_time_limit + the longest retry delay (a countdown task is held unacknowledged)",
    )
    broker_heartbeat: float = Field(
        10.0, ge=0, description="AMQP heartbeat in seconds: RabbitMQ drops a silent worker's connection (and hands "
        "its unacknowledged tasks to others) after about two of them; 0 turns heartbeats off")
    broker_delivery_limit: int | None = Field(
        None, ge=1, description="RabbitMQ quorum-queue delivery limit (x-delivery-limit) before the broker "
        "dead-letters a message itself; default max_deliveries + 2, a backstop behind the delivery guard")
    unacked_restore_interval: float = Field(10.0, gt=0, description="seconds between sweeps for expired messages")
    max_deliveries: int = Field(3, ge=1, description="deliveries of a task that never finished before dead-letter")
    worker_pool_nice: int = Field(
        1, ge=0, le=19, description="niceness a Celery worker's pool processes add to their own, so the worker's "
        "parent (which hands them tasks), PostgreSQL and Redis get the CPU first when they have work; 0 leaves it")
    source_lock_ttl: float = Field(6 * 3600.0, gt=0, description="cap on how long one scheduled run holds its source")
    sources_file: str = Field("config/sources.yaml", description="scheduled sources for `reprint beat`")
    beat_lock_timeout: float = Field(30.0, ge=2, description="seconds before a standby beat takes over a dead one")

    # fetching
    user_agent: str = "reprint/0.1 (news dedup; +https://github.com/reprint)"
    fetch_deadline: float = Field(30.0, gt=0, description="wall-clock seconds for one request, body included")
    fetch_connect_timeout: float = Field(10.0, gt=0)
    fetch_max_bytes: int = Field(10 * 1024 * 1024, gt=0, description="cap on a response body, decompressed")
    fetch_max_redirects: int = Field(5, ge=0)
    fetch_concurrency: int = Field(16, ge=1)
    fetch_per_host: int = Field(2, ge=1)
    fetch_read_timeout: float = Field(10.0, gt=0, description="inactivity timeout between received bytes")
    fetch_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDR[:PORT] entries ([v6CIDR]:PORT) exempt from the SSRF guard; env: comma-separated",
    )
    fetch_max_retries: int = Field(2, ge=0, description="retries after connect errors, 429 and 5xx")
    fetch_backoff: float = Field(0.5, ge=0, description="first retry delay in seconds; doubles, with jitter")
    fetch_max_retry_after: float = Field(30.0, ge=0, description="cap on a server's Retry-After wait")
    fetch_robots: bool = Field(True, description="obey robots.txt")
    fetch_robots_ttl: float = Field(3600.0, ge=0, description="seconds a host's robots.txt stays cached")
    fetch_robots_timeout: float = Field(10.0, gt=0, description="wall-clock seconds for fetching robots.txt")
    fetch_host_delay: float = Field(0.0, ge=0, description="minimum seconds between requests to one host")
    fetch_max_crawl_delay: float = Field(10.0, ge=0, description="cap on a robots.txt Crawl-delay")
    discover_max_sitemap_depth: int = Field(3, ge=0, description="nesting of sitemap indexes followed")
    discover_max_urls: int = Field(100_000, ge=1, description="URLs taken from one feed/sitemap source")

    # WARC sources: which records to read (``reprint ingest --warc-host/--warc-since/--warc-until``)
    warc_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="keep only records of these hosts or their subdomains (www. ignored); empty: all; "
        "env: comma-separated",
    )
    warc_since: datetime | None = Field(None, description="keep only records with WARC-Date at or after this "
                                        "(ISO date or datetime; UTC when no zone is given)")
    warc_until: datetime | None = Field(None, description="keep only records with WARC-Date before this "
                                        "(exclusive; a date means its midnight)")

    # extraction: what one page may cost (pipeline.extract.limits, pipeline.extract.isolated)
    extract_isolate: bool = Field(True, description="extract in worker processes that a deadline or a memory cap "
                                  "stops; off: in the calling process, with the limits but no deadline")
    extract_deadline: float = Field(30.0, gt=0, description="wall-clock seconds for one page's extraction; past "
                                    "it the worker is killed and the page gets PageTimeout (its HTML stays stored)")
    extract_memory_mb: int = Field(512, ge=0, description="address space one page's extraction may add to its "
                                   "worker, in MB; past it the page gets PageOutOfMemory; 0: no cap")
    extract_processes: int = Field(1, ge=1, description="extraction workers per process (one per concurrent caller)")
    extract_fallbacks: Literal["auto", "always"] = Field(
        "auto", description="trafilatura's fallback extractors (readability, jusText): auto runs them only on a "
        "page whose fast-path body leaves most of its paragraph text out; always runs them on every page")
    extract_max_elements: int = Field(ExtractLimits.max_elements, ge=1,
                                      description="start tags read from one page; the page is cut past them")
    extract_max_links: int = Field(ExtractLimits.max_links, ge=1,
                                   description="<a> tags read from one page; the page is cut past them")
    extract_max_attribute_chars: int = Field(ExtractLimits.max_attribute_chars, ge=1,
                                             description="longer attribute values are dropped")
    extract_max_script_chars: int = Field(ExtractLimits.max_script_chars, ge=1,
                                          description="past this much script/style text, scripts are emptied")
    extract_max_paragraphs: int = Field(ExtractLimits.max_paragraphs, ge=1,
                                        description="<p> tags read, and paragraphs an article keeps")
    extract_max_text_chars: int = Field(ExtractLimits.max_text_chars, ge=1,
                                        description="characters an article's text keeps (what dedup aligns)")
    extract_max_word_chars: int = Field(ExtractLimits.max_word_chars, ge=1,
                                        description="a longer run of non-space characters is cut to this")
    extract_max_field_chars: int = Field(ExtractLimits.max_field_chars, ge=1,
                                         description="title, byline, site name and canonical URL are cut to this")

    # detection
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations per signature type")
    min_tokens: int = Field(25, ge=1, description="articles with fewer words are stored but not matched")
    dedup_deadline: float = Field(30.0, gt=0, description="wall-clock seconds for one page's matching and for one "
                                  "cluster's decision; past it: PageTimeout (stage dedup), the article kept unmatched "
                                  "or the cluster's previous decision kept, and reprocess does it again")

    @field_validator("fetch_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("fetch_allow_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            network = entry
            if entry.startswith("["):
                network = entry[1:].split("]", 1)[0]
            elif entry.count(":") == 1:
                network = entry.split(":", 1)[0]
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"fetch_allow_networks: {entry!r} is not a CIDR[:PORT]") from exc
        return value

    @field_validator("warc_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("warc_hosts")
    @classmethod
    def _valid_hosts(cls, value: list[str]) -> list[str]:
        hosts = []
        for entry in value:
            host = entry.strip().lower().rstrip(".")
            if not _HOST_NAME.match(host):
                raise ValueError(f"{entry!r} is not a host name (give e.g. example.com, without scheme, port or path)")
            hosts.append(host)
        return hosts

    @field_validator("warc_since", "warc_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _warc_window(self) -> Settings:
        if self.warc_since is not None and self.warc_until is not None and self.warc_since >= self.warc_until:
            raise ValueError(f"warc_since ({self.warc_since.isoformat()}) must be before warc_until "
                             f"({self.warc_until.isoformat()}): no record could be kept")
        return self

    @model_validator(mode="after")
    def _task_limits(self) -> Settings:
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError("task_soft_time_limit must be below task_time_limit")
        longest_wait = max(self.task_retry_backoff_max, self.fetch_max_retry_after)
        if self.visibility_timeout <= self.task_time_limit + longest_wait:
            raise ValueError("visibility_timeout must exceed task_time_limit plus the longest retry delay, "
                             "or Redis redelivers tasks that are still running or waiting for their retry")
        return self

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if value:  # empty: no broker (an embedded deployment says so explicitly)
            broker_transport(value)  # raises ValueError for a scheme reprint cannot run on
        return value

    @property
    def broker_is_amqp(self) -> bool:
        """True when the Celery broker is RabbitMQ (``amqp://``), False for Redis."""
        return bool(self.broker_url) and broker_transport(self.broker_url) == "amqp"

    @property
    def delivery_limit(self) -> int:
        """The broker's own delivery limit: set, or two more than the delivery guard's."""
        return self.broker_delivery_limit or self.max_deliveries + 2

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    # read API (pipeline/api.py): bearer tokens; reads are open when api_token is unset, admin is off without one
    api_token: str | None = Field(None, description="bearer token required for API reads, when set")
    admin_token: str | None = Field(None, description="bearer token for the admin endpoints (disabled when unset)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
