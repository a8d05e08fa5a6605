"""The distributed deployment: the Celery app, its tasks, the dead-letter guard, beat and the commands.

Everything here is an adapter around ``pipeline/``: the stages themselves never import Celery, so the
embedded runner and the workers share one code path and give the same clusters, canonicals and flags.
"""
