"""SASRec (Kang & McAuley 2018): causal self-attention over a customer's item history, a small
"GPT over behaviour". Each position predicts the next item; the score of every item for a user is
the dot product of the last position's output with the item embeddings (shared with the input).

Trained with full softmax cross-entropy over the catalogue (as RecBole's SASRec does by default),
on CPU in fp32 or on CUDA with bf16 autocast (either on request). Unlike the matrix models it
reads the order of a user's interactions: `fit(data)` takes Interactions with times, and
`history(data)` sets the sequences that `score(users)` continues.
"""

import time

import numpy as np

from marketing_ai.ml import device as devices
from marketing_ai.ml.datasets import Interactions
from marketing_ai.ml.recommend import register


def sequences(data: Interactions) -> list[np.ndarray]:
    """Each user's items in time order (item codes + 1: 0 is padding)."""
    order = np.lexsort((np.arange(len(data)), data.times, data.users))
    users, items = data.users[order], data.items[order] + 1
    cuts = np.flatnonzero(np.diff(users)) + 1
    out = [np.zeros(0, dtype=np.int64) for _ in range(data.n_users)]
    for chunk_users, chunk_items in zip(np.split(users, cuts), np.split(items, cuts), strict=True):
        if len(chunk_users):
            out[int(chunk_users[0])] = chunk_items.astype(np.int64)
    return out


def _network(n_items: int, hidden: int, layers: int, heads: int, max_len: int, dropout: float):
    # torch takes seconds to import: loaded with the model, not the module
    import torch
    from torch import nn
    from torch.nn import functional

    class Block(nn.Module):
        """Pre-norm self-attention + feed-forward. Written out rather than taken from
        nn.TransformerEncoderLayer: that one drops out attention weights (a batch x heads x L x L
        Bernoulli draw, a third of the step on CPU) and needs the mask repeated per head;
        here dropout acts on the residual branches only and one boolean mask serves all heads."""

        def __init__(self) -> None:
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
            self.qkv = nn.Linear(hidden, 3 * hidden)
            self.out = nn.Linear(hidden, hidden)
            self.feed = nn.Sequential(
                nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden)
            )
            self.dropout = nn.Dropout(dropout)

        def forward(self, x, mask):
            batch, length, _ = x.shape
            qkv = self.qkv(self.norm1(x)).view(batch, length, 3, heads, hidden // heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            attended = functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            attended = attended.transpose(1, 2).reshape(batch, length, hidden)
            x = x + self.dropout(self.out(attended))
            return x + self.dropout(self.feed(self.norm2(x)))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.items = nn.Embedding(n_items + 1, hidden, padding_idx=0)
            self.positions = nn.Embedding(max_len, hidden)
            self.dropout = nn.Dropout(dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.norm = nn.LayerNorm(hidden)
            causal = torch.tril(torch.ones(max_len, max_len, dtype=torch.bool))
            self.register_buffer("causal", causal, persistent=False)
            nn.init.normal_(self.items.weight, std=0.02)
            nn.init.normal_(self.positions.weight, std=0.02)

        def forward(self, seq):  # seq: (batch, length), left-padded with 0
            length = seq.shape[1]
            positions = torch.arange(length, device=seq.device)
            x = self.items(seq) * (self.items.embedding_dim**0.5) + self.positions(positions)
            x = self.dropout(x)
            # A position sees itself and the real items before it; a padding position sees
            # only itself (a row with nothing to attend to would turn into NaN).
            causal = self.causal[:length, :length]
            mask = (causal.unsqueeze(0) & (seq > 0).unsqueeze(1)) | causal.diagonal().diag()
            mask = mask.unsqueeze(1)  # one mask for every head
            for block in self.blocks:
                x = block(x, mask)
            return self.norm(x)

        def logits(self, hidden_states):
            return hidden_states @ self.items.weight[1:].T  # (…, n_items), padding excluded

    return Net()


def _left_pad(seqs: list[np.ndarray], max_len: int) -> np.ndarray:
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-max_len:]
        if len(s):
            out[i, -len(s) :] = s
    return out


@register("sasrec")
class SASRec:
    sequential = True

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        max_len: int = 200,
        dropout: float = 0.2,
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: str | None = None,
        patience: int = 5,
        max_seconds: float | None = None,
        precision: str | None = None,
    ) -> None:
        """`precision`: "bf16" (autocast) or "fp32"; by default bf16 on CUDA, fp32 elsewhere."""
        if precision not in (None, "bf16", "fp32"):
            raise ValueError(f"precision must be 'bf16' or 'fp32', not {precision!r}")
        self.hidden, self.layers, self.heads, self.max_len = hidden, layers, heads, max_len
        self.dropout, self.epochs, self.batch_size, self.lr = dropout, epochs, batch_size, lr
        self.weight_decay, self.seed, self.prefer = weight_decay, seed, device
        self.patience, self.max_seconds, self.precision = patience, max_seconds, precision
        self.log: list[dict] = []

    def fit(self, data: Interactions, valid=None, progress=None) -> "SASRec":
        """Trains on `data`. With `valid` = (callable returning a validation score), keeps the
        best epoch and stops after `patience` epochs without improvement. `max_seconds` bounds
        the training time (checked between epochs)."""
        # torch takes seconds to import: loaded with the model, not the module
        import torch

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.device = devices.choose(self.prefer)
        self.n_items = data.n_items
        self.net = _network(
            data.n_items, self.hidden, self.layers, self.heads, self.max_len, self.dropout
        ).to(self.device.name)
        # Training rows: each history cut from its end into windows of max_len + 1 items, in
        # which items 0..n-2 predict items 1..n-1 — every interaction is a target once, however
        # long the history (RecBole gets the same from one row per prefix, at more cost).
        train = []
        for seq in sequences(data):
            for end in range(len(seq), 1, -self.max_len):
                window = seq[max(0, end - self.max_len - 1) : end]
                if len(window) >= 2:
                    train.append(window)
        inputs = _left_pad([s[:-1] for s in train], self.max_len)
        targets = _left_pad([s[1:] for s in train], self.max_len)
        optimiser = torch.optim.Adam(
            self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        precision = self.precision or ("bf16" if self.device.name == "cuda" else "fp32")
        use_bf16 = precision == "bf16"
        self.trained_on = {"device": self.device.name, "precision": precision}
        best, best_state, stale = -1.0, None, 0
        self.history(data)
        began = time.perf_counter()
        for epoch in range(self.epochs):
            self.net.train()
            started, total, batches = time.perf_counter(), 0.0, 0
            order = rng.permutation(len(train))
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                seq = torch.from_numpy(inputs[rows]).to(self.device.name)
                target = torch.from_numpy(targets[rows]).to(self.device.name)
                with torch.autocast(self.device.name, dtype=torch.bfloat16, enabled=use_bf16):
                    out = self.net(seq)
                    mask = target > 0
                    logits = self.net.logits(out[mask])
                    loss = torch.nn.functional.cross_entropy(logits.float(), target[mask] - 1)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total, batches = total + float(loss.detach()), batches + 1
            entry = {
                "epoch": epoch + 1,
                "loss": total / max(batches, 1),
                "seconds": time.perf_counter() - started,
            }
            if valid is not None:
                entry["valid"] = float(valid(self))
                if entry["valid"] > best:
                    best, stale = entry["valid"], 0
                    best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                else:
                    stale += 1
            self.log.append(entry)
            if progress:
                progress(epoch + 1, entry)
            if valid is not None and stale >= self.patience:
                break
            if self.max_seconds and time.perf_counter() - began > self.max_seconds:
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        return self

    def __getstate__(self) -> dict:
        """Pickled as settings + weights (the network's classes are built at fit time)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("net", "device")}
        if "net" in self.__dict__:
            state["weights"] = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        return state

    def __setstate__(self, state: dict) -> None:
        weights = state.pop("weights", None)
        self.__dict__.update(state)
        if weights is not None:
            self.device = devices.choose(self.prefer)
            self.net = _network(
                self.n_items, self.hidden, self.layers, self.heads, self.max_len, self.dropout
            )
            self.net.load_state_dict(weights)
            self.net.to(self.device.name).eval()

    def history(self, data: Interactions) -> "SASRec":
        """The sequences `score` continues (e.g. train + validation items at test time)."""
        self._sequences = sequences(data)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        # torch takes seconds to import: loaded with the model, not the module
        import torch

        self.net.eval()
        seq = torch.from_numpy(_left_pad([self._sequences[u] for u in users], self.max_len))
        with torch.inference_mode():
            out = self.net(seq.to(self.device.name))[:, -1]
            return self.net.logits(out).float().cpu().numpy()
