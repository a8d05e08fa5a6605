"""The API's request and response models: they are the OpenAPI schema that clients and schemathesis check
against. Limits on request fields come from ``limits.py``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ArticleSummary(BaseModel):
    id: int
    url: str
    title: str
    site: str | None
    published: str | None
    canonical_url: str | None
    language: str | None
    byline: str | None
    cluster_id: int | None
    canonical: bool
    flags: list[str]
    similarity: float | None = Field(description="Similarity to the cluster's canonical (1.0 for the canonical).")
    ingested_at: str | None
    updated_at: str | None


class ClusterBrief(BaseModel):
    id: int
    canonical_id: int | None
    size: int
    merged_into: int | None
    member_ids: list[int]


class Article(ArticleSummary):
    text: str
    evidence: dict[str, Any]
    n_tokens: int
    cluster: ClusterBrief | None


class ArticlePage(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class ClusterMember(ArticleSummary):
    evidence: dict[str, Any]


class Event(BaseModel):
    id: int
    cursor: str = Field(description="Resumes the feed right after this event.")
    at: str | None
    type: str = Field(description="article_added, canonical_status, canonical_changed, flags_changed, "
                                  "clusters_merged, cluster_split")
    cluster_id: int | None
    article_id: int | None
    data: dict[str, Any]


class Cluster(BaseModel):
    id: int
    canonical_id: int | None
    size: int
    merged_into: int | None
    created_at: str | None
    updated_at: str | None
    members: list[ClusterMember]
    history: list[Event]


class ChangesPage(BaseModel):
    events: list[Event]
    next_cursor: str = Field(description="Always present: poll again with it (it does not move when nothing is new).")
    has_more: bool


class Run(BaseModel):
    id: int
    started_at: str | None
    finished_at: str | None
    running: bool
    sources: list[str]
    pages: int
    new_articles: int
    errors: int
    counts: dict[str, Any]


class RunError(BaseModel):
    id: int
    at: str | None
    level: str
    stage: str
    kind: str
    url: str | None
    message: str
    source_id: int | None


class RunDetail(Run):
    error_list: list[RunError]


class RunPage(BaseModel):
    items: list[Run]
    next_cursor: str | None


class SourceHealth(BaseModel):
    id: int
    spec: str
    kind: str
    last_run_id: int | None
    last_run_at: str | None
    last_run_finished_at: str | None
    pages: int
    new_articles: int
    errors: int
    next_due: str | None


class RerunRequest(BaseModel):
    source: str = Field(min_length=1, description="The source spec, as listed by /sources.")


class RerunAccepted(BaseModel):
    source: str
    task_id: str


class DeadLetter(BaseModel):
    id: str
    task: str | None = None
    payload: Any = None
    error: str | None = None
    deliveries: int | None = None
    at: str | None = None


class ReplayRequest(BaseModel):
    ids: list[str] | None = Field(None, description="Dead letters to replay; null replays every one.")


class ReplayResult(BaseModel):
    replayed: int
