"""Alembic migrations of the store's schema (PostgreSQL; SQLite keeps ``create_all``)."""
