"""Helpers shared by tests (and benchmarks): never imported from another test module."""
