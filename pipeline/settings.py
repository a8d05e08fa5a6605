"""One settings object for the whole system, read from ``REPRINT_*`` environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of reprint. Environment variables are the upper-cased names with ``REPRINT_``."""

    model_config = SettingsConfigDict(env_prefix="REPRINT_", extra="ignore")

    # storage
    database_url: str = "sqlite:///reprint.db"

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

    # detection
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations per signature type")
    min_tokens: int = Field(25, ge=1, description="articles with fewer words are stored but not matched")

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

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
