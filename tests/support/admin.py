"""A stand-in for the workers' admin backend, for the API's admin routes."""

from __future__ import annotations

from typing import Any


class FakeAdmin:
    """Stands in for the workers' admin backend."""

    def __init__(self) -> None:
        self.letters = [{"id": "d1", "task": "fetch", "payload": {"url": "https://x.example/"}, "error": "boom",
                         "deliveries": 5, "at": "2025-01-01T00:00:00Z"}]
        self.reruns: list[str] = []

    def rerun_source(self, spec: str) -> str:
        self.reruns.append(spec)
        return "task-1"

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        return self.letters[:limit]

    def replay(self, ids: list[str] | None) -> int:
        n = len(self.letters) if ids is None else len([x for x in self.letters if x["id"] in ids])
        self.letters = [] if ids is None else [x for x in self.letters if x["id"] not in ids]
        return n
