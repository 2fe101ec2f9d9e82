"""What every language-model backend returns (the in-process model in llm.py, a server in
remote.py); kept apart so neither backend imports the other."""

from dataclasses import dataclass


@dataclass
class Generation:
    text: str
    tokens: int  # new tokens produced
    # Mean natural-log probability per generated token under the model's own distribution
    # (before temperature, top-p and penalties); None where the backend cannot say.
    logprob: float | None = None
