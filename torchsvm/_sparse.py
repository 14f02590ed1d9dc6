"""Sparse X: the rows of a scipy.sparse or torch sparse matrix, kept as compressed sparse rows on the
solver's device, never as the dense N x D matrix.

:class:`SparseRows` is what the estimators and solvers read of X: its shape, rows picked by index,
products with dense weights (``X W``, ``X^T R``), inner products with other rows (the kernels),
squared row norms and the variance of its entries. The module's functions (:func:`mm`,
:func:`xt_mm`, :func:`dense_rows`, :func:`inner`, ...) take a dense tensor or a :class:`SparseRows`
alike, so each product is written once for both. On the CPU the sparse-sparse products are
scipy's (several times faster than torch's there); on a GPU they are torch's (cuSPARSE).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse
import torch
from torch import Tensor

__all__ = ["SparseRows", "Matrix", "is_sparse", "as_sparse_rows", "mm", "addmm", "xt_mm", "dense_rows",
           "inner", "row_norms_sq", "vstack"]


def _csr_tensor(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, ...]) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # torch's "beta" and invariant-check notices
        return torch.sparse_csr_tensor(crow, col, values, shape, device=values.device, check_invariants=False)


class SparseRows:
    """An ``(N, D)`` matrix as compressed sparse rows: ``crow`` ``(N + 1,)`` and ``col`` ``(nnz,)``
    int64, ``values`` ``(nnz,)`` floating, all on one device, column indices sorted and unique in
    each row. Indexing by a slice or an integer vector gives the chosen rows, again sparse."""

    ndim = 2

    def __init__(self, crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, ...]) -> None:
        self.crow, self.col, self.values = crow, col, values
        self.shape = torch.Size(shape)
        self._csr: Tensor | None = None
        self._csr_t: Tensor | None = None
        self._scipy: scipy.sparse.csr_matrix | None = None

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def nnz(self) -> int:
        return self.values.numel()

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"SparseRows(shape={tuple(self.shape)}, nnz={self.nnz}, dtype={self.dtype}, device={self.device})"

    def element_size(self) -> int:
        return self.values.element_size()

    def is_floating_point(self) -> bool:
        return True

    def detach(self) -> SparseRows:
        return self

    def new_zeros(self, *size: Any, **kwargs: Any) -> Tensor:
        return self.values.new_zeros(*size, **kwargs)

    def to(self, device: torch.device | str | torch.dtype | None = None, dtype: torch.dtype | None = None) -> SparseRows:
        """The same rows on ``device`` in ``dtype`` (self when nothing changes); ``to(dtype)`` as a tensor's."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        device = self.device if device is None else torch.device(device)
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        return SparseRows(self.crow.to(device), self.col.to(device), self.values.to(device, dtype), tuple(self.shape))

    def cpu(self) -> SparseRows:
        return self.to("cpu")

    def __getitem__(self, index: Any) -> SparseRows:
        """Rows ``index`` (a slice, or an integer tensor / array of row numbers) as a SparseRows."""
        if isinstance(index, slice):
            index = torch.arange(self.shape[0], device=self.device)[index]
        index = torch.as_tensor(index, device=self.device)
        if index.dtype == torch.bool:
            index = index.nonzero().squeeze(1)
        if index.ndim != 1:
            raise IndexError(f"Expected a slice or a 1-D vector of row numbers, got shape {tuple(index.shape)}")
        index = index.long()
        start, counts = self.crow[index], self.crow[index + 1] - self.crow[index]
        crow = torch.zeros(index.numel() + 1, dtype=torch.long, device=self.device)
        torch.cumsum(counts, 0, out=crow[1:])
        nnz = int(crow[-1])
        # Output entry t of row r sits at start[r] + (t - crow[r]) in the source.
        row_of = torch.repeat_interleave(torch.arange(index.numel(), device=self.device), counts, output_size=nnz)
        source = start[row_of] + torch.arange(nnz, device=self.device) - crow[:-1][row_of]
        return SparseRows(crow, self.col[source], self.values[source], (index.numel(), self.shape[1]))

    def row_ids(self) -> Tensor:
        """The row of each stored entry ``(nnz,)``."""
        counts = self.crow[1:] - self.crow[:-1]
        return torch.repeat_interleave(torch.arange(self.shape[0], device=self.device), counts, output_size=self.nnz)

    def csr(self) -> Tensor:
        """As a torch sparse CSR tensor (kept)."""
        if self._csr is None:
            self._csr = _csr_tensor(self.crow, self.col, self.values, tuple(self.shape))
        return self._csr

    def csr_t(self) -> Tensor:
        """X^T as a torch sparse CSR tensor (kept): X^T R by rows of X^T is several times faster than
        through the transposed view of X."""
        if self._csr_t is None:
            t = self.scipy().T.tocsr() if self.device.type == "cpu" else None
            if t is not None:
                self._csr_t = _csr_tensor(torch.from_numpy(t.indptr.astype(np.int64)),
                                          torch.from_numpy(t.indices.astype(np.int64)),
                                          torch.from_numpy(t.data), (self.shape[1], self.shape[0]))
            else:
                self._csr_t = self.csr().t().to_sparse_csr()
        return self._csr_t

    def scipy(self) -> scipy.sparse.csr_matrix:
        """A scipy CSR matrix of the same rows (on the CPU; shares memory with a CPU SparseRows)."""
        if self._scipy is None:
            crow, col, values = (t.detach().cpu().numpy() for t in (self.crow, self.col, self.values))
            self._scipy = scipy.sparse.csr_matrix((values, col, crow), shape=tuple(self.shape))
        return self._scipy

    def to_dense(self) -> Tensor:
        return self.csr().to_dense()

    def var(self, correction: int = 0) -> Tensor:
        """The variance of all N D entries (zeros included; NumPy's biased variance, ``correction=0``), in float64."""
        if correction != 0:
            raise ValueError(f"Expected correction=0, got {correction}")
        n = float(self.shape[0] * self.shape[1])
        v = self.values.to(torch.float64)
        mean = v.sum() / n
        return ((v * v).sum() / n - mean * mean).clamp_min(0)


Matrix = Tensor | SparseRows


def dense_array(a: Any) -> np.ndarray:
    """A fitted attribute as a NumPy array: scipy sparse (a sparse fit's ``dual_coef_``) made dense."""
    return a.toarray() if scipy.sparse.issparse(a) else np.asarray(a)


def is_sparse(X: Any) -> bool:
    """Whether X is a scipy.sparse matrix/array, a torch sparse tensor or a :class:`SparseRows`."""
    return (scipy.sparse.issparse(X) or isinstance(X, SparseRows)
            or (isinstance(X, Tensor) and X.layout != torch.strided))


def as_sparse_rows(X: Any, name: str, device: torch.device, dtype: torch.dtype | None = None) -> SparseRows:
    """A scipy.sparse matrix (any format), a torch sparse tensor (COO, CSR, CSC, BSR) or a
    :class:`SparseRows` as a :class:`SparseRows` on ``device``: duplicates summed, indices sorted,
    values float32 or float64 (others as float64), finite, at least one row (scikit-learn's errors)."""
    if isinstance(X, SparseRows):
        S = X
    elif isinstance(X, Tensor):
        if X.ndim != 2:
            raise ValueError(f"Expected {name} to be 2-D (n_samples, n_features), got shape {tuple(X.shape)}")
        T = X.detach()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # torch's "beta" notice
            T = T.coalesce().to_sparse_csr() if T.layout == torch.sparse_coo else T.to_sparse_csr()
        values = T.values() if T.values().is_floating_point() else T.values().to(torch.float64)
        S = SparseRows(T.crow_indices().long(), T.col_indices().long(), values, tuple(T.shape))
    else:
        from sklearn.utils.validation import check_array

        # scikit-learn's conversion and its errors: CSC/COO/... to CSR, no samples, NaN/inf.
        A = check_array(X, accept_sparse="csr", dtype=(np.float64, np.float32), input_name=name)
        A = A.copy() if A is X else A  # sum_duplicates and sort_indices work in place: the caller's is kept
        A.sum_duplicates()
        A.sort_indices()
        S = SparseRows(torch.from_numpy(A.indptr.astype(np.int64)), torch.from_numpy(A.indices.astype(np.int64)),
                       torch.from_numpy(A.data), A.shape)
    if S.shape[0] == 0:
        raise ValueError(f"Expected {name} with at least one sample, got shape {tuple(S.shape)}")
    if S.nnz and not bool(torch.isfinite(S.values).all()):
        raise ValueError(f"Expected {name} to be finite, got {int((~torch.isfinite(S.values)).sum())} NaN or infinite "
                         "stored entries")
    if isinstance(X, Tensor) and S.nnz > 1:  # torch's CSR may hold unsorted or repeated columns: canonicalize
        S = _canonical(S)
    return S.to(device, dtype)


def _canonical(S: SparseRows) -> SparseRows:
    """Sorted, unique column indices in every row (repeats summed), on S's device."""
    rows = S.row_ids()
    key = rows * S.shape[1] + S.col
    if bool((key[1:] > key[:-1]).all()):
        return S
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    values = torch.zeros(unique.numel(), dtype=S.dtype, device=S.device).index_add_(0, inverse, S.values)
    rows_u = unique // S.shape[1]
    crow = torch.zeros(S.shape[0] + 1, dtype=torch.long, device=S.device)
    crow[1:] = torch.cumsum(torch.bincount(rows_u, minlength=S.shape[0]), 0)
    return SparseRows(crow, unique % S.shape[1], values, tuple(S.shape))


def mm(X: Matrix, W: Tensor) -> Tensor:
    """``X W`` ``(N, K)`` for dense ``W`` ``(D, K)``."""
    return X.csr() @ W if isinstance(X, SparseRows) else X @ W


def addmm(b: Tensor, X: Matrix, W: Tensor) -> Tensor:
    """``X W + b``."""
    return mm(X, W) + b if isinstance(X, SparseRows) else torch.addmm(b, X, W)


def xt_mm(X: Matrix, R: Tensor) -> Tensor:
    """``X^T R`` ``(D, K)`` for a thin dense ``R`` ``(N, K)``."""
    if isinstance(X, SparseRows):
        return X.csr_t() @ R
    # (R^T X)^T: the same product, but CPU BLAS takes the transposed-X route several times slower for a few columns.
    return R.t().mm(X).t()


def dense_rows(X: Matrix, index: Any) -> Tensor:
    """Rows ``index`` of X as a dense ``(n, D)`` tensor (for a few rows: a Gram chunk, a partition)."""
    return X[index].to_dense() if isinstance(X, SparseRows) else X[index]


def inner(A: Matrix, Z: Matrix) -> Tensor:
    """``A Z^T`` ``(n_A, n_Z)``, dense, for any mix of dense tensors and SparseRows."""
    if isinstance(A, SparseRows) and isinstance(Z, SparseRows):
        if A.device.type == "cpu":  # scipy's product: several times faster than torch's on the CPU
            return torch.from_numpy((A.scipy() @ Z.scipy().T).toarray()).to(A.dtype)
        return (A.csr() @ Z.csr_t()).to_dense()
    if isinstance(A, SparseRows):
        assert isinstance(Z, Tensor)
        return A.csr() @ Z.mT.contiguous()
    if isinstance(Z, SparseRows):
        return (Z.csr() @ A.mT.contiguous()).mT
    return A @ Z.mT


def row_norms_sq(X: Matrix) -> Tensor:
    """``||x_i||^2`` for each row ``(N,)``."""
    if isinstance(X, SparseRows):
        out = X.values.new_zeros(X.shape[0])
        return out.index_add_(0, X.row_ids(), X.values * X.values)
    return (X * X).sum(-1)


def vstack(parts: list[Matrix]) -> Matrix:
    """The rows of ``parts`` one after another (all dense or all sparse)."""
    sparse = [p for p in parts if isinstance(p, SparseRows)]
    if not sparse:
        return torch.cat([p for p in parts if isinstance(p, Tensor)])
    if len(sparse) != len(parts):
        raise TypeError("Expected all parts sparse or all dense")
    offsets = np.cumsum([0] + [p.nnz for p in sparse[:-1]])
    crow = torch.cat([sparse[0].crow[:1]] + [p.crow[1:] + int(o) for p, o in zip(sparse, offsets, strict=True)])
    return SparseRows(crow, torch.cat([p.col for p in sparse]), torch.cat([p.values for p in sparse]),
                      (sum(p.shape[0] for p in sparse), sparse[0].shape[1]))
