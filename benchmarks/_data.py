"""The image sets the benchmarks read from ../shared/data, flattened to pixels / 255, and a generated text corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse
import torch

from torchsvm.data import load_images

SETS = {"mnist-10k": ("mnist", "mnist-10k"), "fashion-mnist": ("fashion-mnist", "fashion-mnist")}


def load_flat(
    name: str, root: Path, n_train: int | None, dtype: torch.dtype = torch.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)`` as NumPy, images flattened and scaled to [0, 1]."""
    dataset, folder = SETS[name]
    X, y = load_images(dataset, "train", root / folder)
    Xt, yt = load_images(dataset, "test", root / folder)
    if n_train:
        X, y = X[:n_train], y[:n_train]
    flat = lambda a: (a.reshape(len(a), -1).to(dtype) / 255.0).numpy()  # noqa: E731
    return flat(X), y.numpy(), flat(Xt), yt.numpy()


def add_data_arguments(p: argparse.ArgumentParser, default_sets: list[str], allow_none: bool = False) -> None:
    """--data-root (../shared/data beside the repository), --datasets and --n-train."""
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--datasets", nargs="*" if allow_none else "+", default=default_sets, choices=sorted(SETS))
    p.add_argument("--n-train", type=int, default=None, help="first N training images only")


def text_corpus(n_docs: int, n_terms: int, n_topics: int = 20, doc_length: float = 120.0, topic_share: float = 0.04,
                topic_words: int = 1000, seed: int = 0) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """A seeded TF-IDF-like corpus: ``(X (n_docs, n_terms) CSR float64, topic labels (n_docs,))``.

    Words follow Zipf's law over the vocabulary (p(rank r) ~ 1 / (r + 2.7)); each topic owns
    ``topic_words`` words drawn from the whole vocabulary, Zipf-weighted among themselves, and a
    document of topic t draws ``topic_share`` of its words from them, the rest from the background.
    Lengths are log-normal around ``doc_length``. Counts become sublinear TF-IDF rows of unit norm
    (scikit-learn's ``TfidfTransformer(sublinear_tf=True)``), as text classifiers feed a linear SVM.
    """
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    ranks = np.arange(n_terms)
    background = np.cumsum(1.0 / (ranks + 2.7))
    background /= background[-1]
    owned = [rng.choice(n_terms, topic_words, replace=False) for _ in range(n_topics)]
    topic_cdf = np.cumsum(1.0 / (np.arange(topic_words) + 1.0))
    topic_cdf /= topic_cdf[-1]
    y = rng.integers(0, n_topics, n_docs)
    lengths = np.maximum(5, rng.lognormal(np.log(doc_length), 0.5, n_docs).astype(np.int64))
    doc_of = np.repeat(np.arange(n_docs), lengths)
    from_topic = rng.random(doc_of.size) < topic_share
    words = np.searchsorted(background, rng.random(doc_of.size))
    picks = np.searchsorted(topic_cdf, rng.random(int(from_topic.sum())))
    words[from_topic] = np.stack(owned)[y[doc_of[from_topic]], picks]
    counts = scipy.sparse.csr_matrix((np.ones(doc_of.size), (doc_of, words)), shape=(n_docs, n_terms))
    counts.sum_duplicates()
    X = TfidfTransformer(sublinear_tf=True).fit_transform(counts).tocsr()
    return X, y
