"""The web UI: server-rendered pages for editors (clusters, diffs, reviews) and operators (the status screen).

``mount_ui(app, store, settings)`` adds the pages to the API app (``pipeline.serve.api.create_app`` does it). The
parts: ``routes`` (the pages and forms), ``data`` (their read queries), ``diff`` (the word-level diff of one member
against its canonical), ``auth`` (sign-in sessions and CSRF tokens), ``reviews`` (the interface of the operator
reviews the forms call). Templates and the stylesheet ship with the package.
"""

from pipeline.serve.ui.routes import UI, mount_ui

__all__ = ["UI", "mount_ui"]
