"""The AI engine: pure Python + numpy/torch/transformers.

Never imports django, rest_framework, celery, crm, campaigns or workers (an import-linter contract
in CI holds this line). It takes arrays and dataclasses and returns the same.
"""
