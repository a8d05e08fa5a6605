"""Deduplication: fingerprint (MinHash kinds) → match (LSH candidates) → verify (alignment) → cluster
(partition) → canonicalize (canonical election and spun / scraped flags with evidence), orchestrated by the
``Deduplicator`` under one ``DecisionPolicy``, with the operator reviews in force as constraints (``ReviewSet``).
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "CandidateIndex": "pipeline.dedup.deduplicator",
    "DecisionPolicy": "pipeline.dedup.policy",
    "Deduplicator": "pipeline.dedup.deduplicator",
    "KINDS": "pipeline.dedup.fingerprint",
    "LSHIndex": "pipeline.dedup.index",
    "ReviewSet": "pipeline.dedup.reviews",
    "align": "pipeline.dedup.verify",
    "decide": "pipeline.dedup.canonical",
    "estimate_jaccard": "pipeline.dedup.fingerprint",
    "fingerprint": "pipeline.dedup.fingerprint",
    "fingerprint_tokens": "pipeline.dedup.fingerprint",
    "flipped": "pipeline.dedup.verify",
    "minhash_of": "pipeline.dedup.fingerprint",
    "orphaned_punctuation": "pipeline.dedup.canonical",
    "partition": "pipeline.dedup.cluster",
    "rarity_shift": "pipeline.dedup.rarity",
    "spun_part": "pipeline.dedup.verify",
    "verify": "pipeline.dedup.verify",
    "verify_articles": "pipeline.dedup.verify",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.dedup", _EXPORTS)
