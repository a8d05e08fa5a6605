"""The API's request and response models: they are the OpenAPI schema that clients and schemathesis check
against. Limits on request fields come from ``limits.py``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from pipeline.serve.limits import NOTE_CHARS, URL_CHARS, WHO_CHARS


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
                                  "clusters_merged, cluster_split, article_updated, article_removed, "
                                  "review_applied, review_undone")
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


class ArticleVersion(BaseModel):
    version: int
    content_hash: str | None = Field(description="The page's content hash when this version was current.")
    fetched_at: str | None
    replaced_at: str | None = Field(description="When a newer version replaced it (null: the current one).")
    title: str
    text_length: int
    text_hash: str
    n_tokens: int
    reason: str | None = Field(description="update (the page changed) or reprocess (re-extracted).")


class ArticleVersions(BaseModel):
    article_id: int
    url: str
    current: ArticleVersion
    versions: list[ArticleVersion] = Field(description="The earlier versions, oldest first.")


class _ReviewFields(BaseModel):
    note: str | None = Field(None, max_length=NOTE_CHARS)
    who: str | None = Field(None, min_length=1, max_length=WHO_CHARS, description="Default: admin (api).")


class CanonicalReview(_ReviewFields):
    kind: Literal["canonical"]
    url: str = Field(min_length=1, max_length=URL_CHARS, description="This page is its cluster's canonical.")


class SeparateReview(_ReviewFields):
    kind: Literal["separate"]
    url: str = Field(min_length=1, max_length=URL_CHARS, description="Take this page out of its cluster.")


class MergeReview(_ReviewFields):
    kind: Literal["merge"]
    urls: list[Annotated[str, Field(min_length=1, max_length=URL_CHARS)]] = Field(
        min_length=2, max_length=2, json_schema_extra={"uniqueItems": True},
        description="Two different pages that are one article.")

    @field_validator("urls")
    @classmethod
    def _two_pages(cls, urls: list[str]) -> list[str]:
        if len(set(urls)) != len(urls):
            raise ValueError("a page cannot be merged with itself")
        return urls


class FlagReview(_ReviewFields):
    kind: Literal["flag"]
    url: str = Field(min_length=1, max_length=URL_CHARS)
    flag: Literal["spun", "scraped"]
    on: bool = Field(description="Set the flag (true) or clear it (false).")


#: ``POST /admin/reviews``: one of the four kinds, told apart by ``kind``.
ReviewRequest = Annotated[CanonicalReview | SeparateReview | MergeReview | FlagReview, Field(discriminator="kind")]


class Review(BaseModel):
    id: int
    kind: str
    urls: list[str]
    article_ids: list[int]
    flag: str | None
    on: bool | None
    who: str
    note: str | None
    at: str | None
    undone: bool
    undone_at: str | None
    undone_by: str | None
    changes: int | None = Field(None, description="Changes the review (or its undo) made to decisions.")
    cluster_id: int | None = None


class UndoRequest(BaseModel):
    who: str | None = Field(None, min_length=1, max_length=WHO_CHARS, description="Default: admin (api).")


class ForgetRequest(BaseModel):
    url: str = Field(min_length=1, max_length=URL_CHARS)
    reason: str | None = Field(None, max_length=NOTE_CHARS)
    who: str | None = Field(None, min_length=1, max_length=WHO_CHARS, description="Default: admin (api).")


class Tombstone(BaseModel):
    url: str
    article_id: int | None
    reason: str | None
    who: str
    at: str | None
    allowed: bool
    allowed_at: str | None


class ForgetResult(BaseModel):
    url: str
    forgotten: bool = Field(description="false: the page was forgotten already (nothing was done).")
    already: bool
    article_id: int | None
    changes: int
    tombstone: Tombstone | None
