"""marketing_ai: the Django project package, and the AI engine in marketing_ai.ml.

Nothing is imported here on purpose: `marketing_ai.ml` must stay importable without Django or
Celery. The Celery app is loaded by workers.apps when Django starts.
"""
