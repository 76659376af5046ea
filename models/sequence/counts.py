"""Key sequences to count vectors (the event-count matrix of the log-mining literature)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.base import FloatArray


def count_vectors(sequences: Sequence[Sequence[int]], n_keys: int) -> FloatArray:
    """Count how often each key 0..n_keys-1 occurs in each sequence.

    Keys outside the range are ignored (a key never seen in training carries no weight in a
    count model; the sequence model handles unseen keys itself).

    Examples
    --------
    >>> count_vectors([[0, 1, 1], [2], []], 3).tolist()
    [[1.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    counts = np.zeros((len(sequences), n_keys), dtype=np.float64)
    for row, sequence in enumerate(sequences):
        keys = np.asarray(sequence, dtype=np.int64)
        keys = keys[(keys >= 0) & (keys < n_keys)]
        counts[row] = np.bincount(keys, minlength=n_keys)
    return counts


def tf_idf(counts: FloatArray, idf: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """Weight a count matrix by inverse document frequency (Xu et al. 2009).

    Returns the weighted matrix and the idf vector (pass it back to weight new rows alike).

    Examples
    --------
    >>> import numpy as np
    >>> weighted, idf = tf_idf(np.array([[1.0, 1.0], [1.0, 0.0]]))
    >>> idf.round(4).tolist()
    [0.0, 0.6931]
    """
    if idf is None:
        document_frequency = (counts > 0).sum(axis=0)
        idf = np.log(counts.shape[0] / np.maximum(document_frequency, 1.0))
    weighted: FloatArray = counts * idf
    return weighted, idf
