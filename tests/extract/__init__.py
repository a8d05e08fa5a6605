"""Tests of the extract stage (pipeline/extract)."""
