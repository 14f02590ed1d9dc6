"""LightningModule training a kernel SVM (one-vs-rest, dual) with the decomposition solver, step by step."""

from __future__ import annotations

from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import Tensor

from lightning_modules._evaluation import ArgmaxEvaluation
from torchsvm._validation import check_positive
from torchsvm.kernels import linear_kernel, polynomial_kernel, rbf_kernel
from torchsvm.solvers.dual import DecompositionSolver, dual_bias

__all__ = ["KernelSVMModule"]


class KernelSVMModule(ArgmaxEvaluation, pl.LightningModule):
    """K one-vs-rest kernel SVMs solved in the dual, one decomposition iteration per training step.

    At fit start the first ``n_train`` images of the DataModule's training split are taken onto
    the device; the K problems (y_ik = +1 for class k) share one
    :class:`torchsvm.solvers.dual.DecompositionSolver`, so the working sets' kernel rows come
    from one matrix product per step. Each training batch advances the solver by one outer
    iteration (the batch itself is not used: the dual is solved on the whole training set, and
    the DataModule's loader only paces the steps); training stops once the KKT violation of
    every problem is <= ``tol``. Prediction uses the support vectors only.

    Args:
        kernel: ``"rbf"``, ``"poly"`` or ``"linear"``.
        C: cost of a margin violation, > 0.
        gamma: kernel coefficient, > 0 (RBF: exp(-gamma ||x - z||^2) on pixels / 255).
        degree, coef0: of the polynomial kernel.
        n_train: training-set size (the first n_train images of the training split; None: all).
        working_set_size: variables per decomposition iteration.
        tol: stopping tolerance on the maximal KKT violation.
        dtype: ``"float64"`` or ``"float32"`` for the kernel and the dual variables.

    Logs per step: ``solver/dual_objective`` (sum over classes), ``solver/duality_gap``
    (relative, primal minus dual over |primal|), ``solver/kkt_violation`` (max over classes),
    ``solver/n_support_vectors``, ``solver/inner_smo_steps``; per epoch ``train_acc`` (from the
    solver's gradient, without kernel evaluations), ``val_acc``, ``test_acc``.
    """

    def __init__(
        self,
        kernel: Literal["rbf", "poly", "linear"] = "rbf",
        C: float = 5.0,
        gamma: float = 0.05,
        degree: int = 3,
        coef0: float = 0.0,
        n_train: int | None = 5000,
        working_set_size: int = 1024,
        tol: float = 1e-3,
        dtype: Literal["float64", "float32"] = "float64",
    ) -> None:
        super().__init__()
        check_positive("C", C)
        if gamma <= 0:
            raise ValueError(f"Expected gamma > 0, got {gamma}")
        if kernel not in ("rbf", "poly", "linear"):
            raise ValueError(f"Expected kernel to be 'rbf', 'poly' or 'linear', got {kernel!r}")
        if n_train is not None and n_train < 2:
            raise ValueError(f"Expected n_train >= 2 or None, got {n_train}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.solver: DecompositionSolver | None = None
        # The fitted model (support vectors, y * alpha per class, biases), kept in checkpoints.
        self.sv: Tensor | None = None
        self.coef: Tensor | None = None
        self.intercept: Tensor | None = None
        # Lightning counts training steps (global_step: checkpoints, logging) by optimizer steps.
        # The dual solver is the real optimizer; a no-op optimizer step marks each of its iterations.
        self._step_marker = torch.nn.Parameter(torch.zeros(()), requires_grad=False)

    def kernel(self, A: Tensor, Z: Tensor) -> Tensor:
        h = self.hparams
        if h.kernel == "rbf":
            return rbf_kernel(A, Z, gamma=h.gamma)
        if h.kernel == "poly":
            return polynomial_kernel(A, Z, degree=h.degree, gamma=h.gamma, coef0=h.coef0)
        return linear_kernel(A, Z)

    @property
    def _solver_dtype(self) -> torch.dtype:
        return torch.float64 if self.hparams.dtype == "float64" else torch.float32

    def setup(self, stage: str) -> None:
        # Runs before a DDP strategy wraps the module, whose error would be opaque here.
        if stage == "fit" and self.trainer is not None and self.trainer.world_size > 1:
            raise RuntimeError(
                f"KernelSVMModule solves its dual on one process; got a trainer with {self.trainer.world_size} "
                "processes. Fit it with --trainer.devices 1 (validation and test may use more), or use "
                "torchsvm.SVC for the full data."
            )

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or getattr(dm, "train_set", None) is None:
            raise RuntimeError("KernelSVMModule needs a DataModule with a train_set (e.g. MNISTDataModule)")
        x, y = dm.train_set.tensors
        n = len(y) if self.hparams.n_train is None else min(self.hparams.n_train, len(y))
        X = x[:n].flatten(1).to(self.device, self._solver_dtype)
        labels = y[:n].to(self.device)
        self.num_classes = int(y.max()) + 1
        Y = torch.where(labels.unsqueeze(0) == torch.arange(self.num_classes, device=self.device).unsqueeze(1), 1.0, -1.0)
        C = torch.full(Y.shape, float(self.hparams.C), dtype=self._solver_dtype, device=self.device)
        self.labels = labels
        self.solver = DecompositionSolver(X, Y.to(self._solver_dtype), C, self.kernel,
                                          self.hparams.working_set_size, self.hparams.tol)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        s = self.solver
        inner_before = s.n_inner
        converged = s.step()  # also refreshes s.gap, the KKT violation of the current iterate
        dual = s.dual_objective()
        primal = self._primal_objective()
        self.log_dict({
            "solver/dual_objective": float(dual.sum()),
            "solver/duality_gap": float(((primal - dual).sum() / primal.sum().abs().clamp_min(1e-12))),
            "solver/kkt_violation": float(s.gap.max()),
            "solver/n_support_vectors": float((s.alpha > 0).any(0).sum()),
            "solver/inner_smo_steps": float(s.n_inner - inner_before),
        }, on_step=True, on_epoch=False)
        self.log("kkt", float(s.gap.max()), prog_bar=True, on_step=True, on_epoch=False, logger=False)
        self.optimizers().step()  # no-op: advances global_step
        if converged:  # every problem's KKT violation <= tol
            self.trainer.should_stop = True

    def _bias(self) -> Tensor:
        s = self.solver
        return dual_bias(s.G, s.Y, s.alpha, s.C)

    def _primal_objective(self) -> Tensor:
        """1/2 a^T Q a + sum_i C_i max(0, 1 - y_i f(x_i)) per class, from G alone: ``(K,)``.

        With G = Q a - 1: a^T Q a = a^T (G + 1) and y_i f(x_i) = G_i + 1 + y_i b.
        """
        s = self.solver
        b = self._bias().unsqueeze(1)
        hinge = (-s.G - s.Y * b).clamp_min(0)
        return 0.5 * (s.alpha * (s.G + 1)).sum(1) + (s.C * hinge).sum(1)

    def on_train_epoch_end(self) -> None:
        s = self.solver
        if s is None:
            return
        # f_k(x_i) = y_ik (G_ik + 1) + b_k: the training decisions without kernel evaluations.
        f = s.Y * (s.G + 1) + self._bias().unsqueeze(1)  # (K, N)
        self.log("train_acc", float((f.argmax(0) == self.labels).float().mean()))

    def _snapshot(self) -> None:
        """Keep the support vectors and coefficients of the current iterate (used to predict).

        Taken where they are read: before validation, into checkpoints, at the end of fit."""
        s = self.solver
        is_sv = (s.alpha > 0).any(0)
        self.sv = s.X[is_sv]
        self.coef = (s.alpha * s.Y)[:, is_sv].T.contiguous()  # (n_SV, K)
        self.intercept = self._bias()

    def forward(self, x: Tensor) -> Tensor:
        """Decision values f_k(x) ``(B, K)`` from the support vectors."""
        if self.sv is None:
            raise RuntimeError("KernelSVMModule has no fitted model yet: run trainer.fit first")
        X = x.flatten(1).to(self.sv.dtype)
        return self.kernel(X, self.sv) @ self.coef + self.intercept

    def on_validation_epoch_start(self) -> None:
        if self.solver is not None:
            self._snapshot()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.solver is not None:
            self._snapshot()
        if self.sv is not None:
            checkpoint["kernel_svm"] = {"sv": self.sv.cpu(), "coef": self.coef.cpu(), "intercept": self.intercept.cpu()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("kernel_svm")
        if state is not None:
            self.sv, self.coef, self.intercept = state["sv"], state["coef"], state["intercept"]

    def on_fit_end(self) -> None:
        if self.solver is not None:
            self._snapshot()

    def on_test_start(self) -> None:
        self._to_device()

    def on_predict_start(self) -> None:
        self._to_device()

    def _to_device(self) -> None:
        if self.sv is not None:
            self.sv, self.coef, self.intercept = (t.to(self.device) for t in (self.sv, self.coef, self.intercept))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([self._step_marker], lr=0.0)  # see _step_marker
