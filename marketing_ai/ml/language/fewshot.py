"""Few-shot chat messages from a workspace's past winning variants (#19, learning what works)."""


def messages(brief, task: str) -> list[dict]:
    """User/assistant pairs to place before the copy writer's final user message; [] for now."""
    return []
