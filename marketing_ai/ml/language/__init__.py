"""Language models: sentence embeddings (and, later, generation)."""
