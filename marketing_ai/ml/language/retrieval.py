"""Hybrid retrieval over the knowledge base: BM25 on words and cosine on sentence embeddings,
fused by reciprocal rank (Cormack et al. 2009), so a question phrased unlike the article
(embeddings) and one naming a rare term or code (words) both find it.

Articles are cut into passages at headings and blank lines (a few sentences each); results are
passages, and `articles` folds them to distinct articles for citation.
"""

import re
from dataclasses import dataclass

import numpy as np
from scipy import sparse

MODES = ("hybrid", "dense", "lexical")


@dataclass
class Passage:
    article: int  # the article's id
    title: str
    heading: str
    text: str

    def as_text(self) -> str:
        return " — ".join(x for x in (self.title, self.heading) if x) + "\n" + self.text


def passages(article: int, title: str, body: str, max_words: int = 120) -> list[Passage]:
    """A markdown article cut at headings and paragraphs, short paragraphs joined."""
    out, heading, buffer = [], "", []

    def flush():
        if buffer:
            out.append(Passage(article, title, heading, " ".join(buffer)))
            buffer.clear()

    for block in re.split(r"\n\s*\n", body or ""):
        block = block.strip()
        if not block:
            continue
        match = re.match(r"^#{1,6}\s+(.*)", block)
        if match:
            flush()
            heading = match.group(1).strip()
            block = block[match.end() :].strip()
            if not block:
                continue
        if sum(len(b.split()) for b in buffer) + len(block.split()) > max_words:
            flush()
        buffer.append(block)
    flush()
    return out or [Passage(article, title, "", title)]


_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by can do does for from how i if in is it its me my of on or our "
    "so that the this to was what when where which who why will with you your".split()
)


def tokens(text: str) -> list[str]:
    """Lower-case words without stop words, plural -s folded ("returns" finds "return")."""
    out = []
    for word in _TOKEN.findall(text.lower()):
        if word in _STOP:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


class BM25:
    def __init__(self, texts: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        docs = [tokens(t) for t in texts]
        self.vocabulary = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
        rows, cols = [], []
        for row, doc in enumerate(docs):
            for word in doc:
                rows.append(row)
                cols.append(self.vocabulary[word])
        shape = (len(docs), len(self.vocabulary))
        tf = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
        tf.sum_duplicates()
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        df = np.bincount(tf.indices, minlength=shape[1])
        self.idf = np.log1p((len(docs) - df + 0.5) / (df + 0.5))
        norm = k1 * (1 - b + b * lengths / max(lengths.mean(), 1e-9))
        tf = tf.tocoo()
        weight = tf.data * (k1 + 1) / (tf.data + norm[tf.row])
        self.weights = sparse.csc_matrix((weight, (tf.row, tf.col)), shape=shape)

    def scores(self, query: str) -> np.ndarray:
        ids = sorted({self.vocabulary[w] for w in tokens(query) if w in self.vocabulary})
        if not ids:
            return np.zeros(self.weights.shape[0])
        return np.asarray(self.weights[:, ids] @ self.idf[ids]).ravel()


@dataclass
class Hit:
    passage: Passage
    score: float  # fused (hybrid) or the mode's own score
    similarity: float  # cosine to the question, whatever the mode


class Index:
    def __init__(self, items: list[Passage], encoder) -> None:
        self.passages = items
        self.encoder = encoder
        texts = [p.as_text() for p in items]
        self.lexical = BM25(texts)
        self.vectors = encoder.encode(texts) if items else np.zeros((0, 1), dtype=np.float32)

    def search(self, query: str, k: int = 5, mode: str = "hybrid", rrf: int = 60) -> list[Hit]:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if not self.passages:
            return []
        similarity = self.vectors @ self.encoder.encode([query])[0]
        lexical = self.lexical.scores(query)
        if mode == "dense":
            fused = similarity
        elif mode == "lexical":
            fused = lexical
        else:
            fused = np.zeros(len(self.passages))
            for scores in (similarity, lexical):
                ranks = np.empty(len(scores), dtype=np.int64)
                ranks[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
                fused += 1.0 / (rrf + 1 + ranks)
        order = np.argsort(-fused, kind="stable")[:k]
        return [Hit(self.passages[i], float(fused[i]), float(similarity[i])) for i in order]

    def articles(self, query: str, k: int = 3, mode: str = "hybrid") -> list[int]:
        """The first `k` distinct articles among the ranked passages."""
        seen: list[int] = []
        for hit in self.search(query, k=len(self.passages), mode=mode):
            if hit.passage.article not in seen:
                seen.append(hit.passage.article)
            if len(seen) == k:
                break
        return seen
