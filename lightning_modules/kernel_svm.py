"""LightningModules solving kernel SVMs in the dual with the decomposition solver, one outer iteration per step:
one-vs-rest classification (:class:`KernelSVMModule`) and epsilon-SVR (:class:`KernelSVRModule`)."""

from __future__ import annotations

from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, R2Score

from lightning_modules._evaluation import ArgmaxEvaluation
from torchsvm._validation import check_positive
from torchsvm.distributed import LOCAL, Collectives, Shards, gather_rows
from torchsvm.kernels import linear_kernel, polynomial_kernel, rbf_kernel
from torchsvm.solvers.dual import DecompositionSolver, dual_bias
from torchsvm.solvers.sharded import ShardedDecompositionSolver

__all__ = ["DualSolverModule", "KernelSVMModule", "KernelSVRModule"]


class DualSolverModule(pl.LightningModule):
    """What the kernel modules share: one :class:`~torchsvm.solvers.dual.DecompositionSolver` built at
    fit start from the first ``n_train`` training samples, advanced one outer iteration per
    training step (the batch only paces the steps: the dual is solved on the whole training set),
    stopped once every KKT violation is <= ``tol``; the solver's figures logged per step; the
    fitted model (support vectors, coefficients, biases) kept in checkpoints.

    Subclasses build the problems (:meth:`_problems`, through :meth:`_solver`), say what the
    training-set predictions are from the solver's gradient (:meth:`_train_decisions`) and what the
    loss terms of the primal are (:meth:`_primal_loss`).

    Under DDP (``--trainer.strategy ddp``) each rank owns a contiguous block of the training rows
    and the ranks solve one dual together
    (:class:`~torchsvm.solvers.sharded.ShardedDecompositionSolver`): every logged figure is the
    whole problem's, and every rank holds the same fitted model (the support vectors are gathered),
    equal to the one-process fit to ``tol``.

    Logs per step: ``solver/dual_objective`` (sum over problems), ``solver/duality_gap``
    (relative, primal minus dual over |primal|), ``solver/kkt_violation`` (max over problems),
    ``solver/n_support_vectors``, ``solver/inner_smo_steps``.
    """

    def __init__(self, kernel: str, C: float, gamma: float, n_train: int | None) -> None:
        super().__init__()
        check_positive("C", C)
        if gamma <= 0:
            raise ValueError(f"Expected gamma > 0, got {gamma}")
        if kernel not in ("rbf", "poly", "linear"):
            raise ValueError(f"Expected kernel to be 'rbf', 'poly' or 'linear', got {kernel!r}")
        if n_train is not None and n_train < 2:
            raise ValueError(f"Expected n_train >= 2 or None, got {n_train}")
        self.automatic_optimization = False
        self.solver: DecompositionSolver | None = None
        self.shards: Collectives = LOCAL  # the ranks holding the training rows (set at fit start)
        # The fitted model (support vectors, coefficients per problem, biases), kept in checkpoints.
        self.sv: Tensor | None = None
        self.coef: Tensor | None = None
        self.intercept: Tensor | None = None
        # Lightning counts training steps (global_step: checkpoints, logging) by optimizer steps.
        # The dual solver is the real optimizer; a no-op optimizer step marks each of its iterations.
        # It requires grad only so that DDP, which refuses a module without one, can wrap the module:
        # nothing calls backward, so DDP never reduces it.
        self._step_marker = torch.nn.Parameter(torch.zeros(()))

    # -- what subclasses say ------------------------------------------------------------------
    def _problems(self, X: Tensor, target: Tensor) -> DecompositionSolver:
        raise NotImplementedError

    def _train_decisions(self, b: Tensor) -> Tensor:
        """Decision values ``(N, B)`` on the training samples from the solver's state and biases ``b``
        ``(B,)``, without kernel evaluations."""
        raise NotImplementedError

    def _primal_loss(self, b: Tensor) -> Tensor:
        """``sum_i C_i loss_i`` per problem ``(B,)`` at the current iterate and biases ``b`` (from
        :meth:`_train_decisions`)."""
        raise NotImplementedError

    def _coefficients(self) -> Tensor:
        """``(B, n_rows)`` coefficients of the kernel per solver row (y * alpha)."""
        s = self.solver
        return s.alpha * s.Y

    # -- shared ------------------------------------------------------------------------------
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

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or getattr(dm, "train_set", None) is None:
            raise RuntimeError(f"{type(self).__name__} needs a DataModule with a train_set (e.g. MNISTDataModule)")
        x, target = dm.train_set.tensors
        n = len(target) if self.hparams.n_train is None else min(self.hparams.n_train, len(target))
        rows = slice(0, n)
        if self.trainer.world_size > 1:  # this rank's block of the n rows (the first n % world take one more)
            self.shards = Shards()
            size, extra = divmod(n, self.shards.world_size)
            start = self.shards.rank * size + min(self.shards.rank, extra)
            rows = slice(start, start + size + (self.shards.rank < extra))
        self.solver = self._problems(x[rows].flatten(1).to(self.device, self._solver_dtype),
                                     target[rows].to(self.device))

    def _solver(self, X: Tensor, Y: Tensor, C: Tensor, p: Tensor | None = None) -> DecompositionSolver:
        """The decomposition solver of the problems ``(Y, C, p)`` on this rank's rows X, sharded under DDP."""
        h = self.hparams
        if self.shards.distributed:
            return ShardedDecompositionSolver(X, Y, C, self.kernel, self.shards, h.working_set_size, h.tol, p=p)
        return DecompositionSolver(X, Y, C, self.kernel, h.working_set_size, h.tol, p=p)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        s = self.solver
        inner_before = s.n_inner
        converged = s.step()  # also refreshes s.gap, the KKT violation of the current iterate
        dual = s.dual_objective()
        primal = self._primal_objective()
        self.log_dict({  # the whole problem's figures, equal on every rank: no sync needed
            "solver/dual_objective": float(dual.sum()),
            "solver/duality_gap": float(((primal - dual).sum() / primal.sum().abs().clamp_min(1e-12))),
            "solver/kkt_violation": float(s.gap.max()),
            "solver/n_support_vectors": float(self.shards.sum((s.alpha > 0).any(0).sum())),
            "solver/inner_smo_steps": float(s.n_inner - inner_before),
        }, on_step=True, on_epoch=False)
        self.log("kkt", float(s.gap.max()), prog_bar=True, on_step=True, on_epoch=False, logger=False)
        self.optimizers().step()  # no-op: advances global_step
        if converged:  # every problem's KKT violation <= tol
            self.trainer.should_stop = True

    def _bias(self) -> Tensor:
        s = self.solver
        return dual_bias(s.G, s.Y, s.alpha, s.C, self.shards)

    def _primal_objective(self) -> Tensor:
        """1/2 a^T Q a + the loss terms, per problem, from G alone: ``(B,)``. With G = Q a + p, a^T Q a = a^T (G - p)."""
        s = self.solver
        b = self._bias()
        return self.shards.sum(0.5 * (s.alpha * (s.G - s.p)).sum(1) + self._primal_loss(b))

    def _snapshot(self) -> None:
        """Keep the support vectors and coefficients of the current iterate (used to predict).

        Taken where they are read: before validation, into checkpoints, at the end of fit (on every
        rank alike: under DDP each rank's support vectors are gathered, in rank order)."""
        coef = self._coefficients()
        is_sv = (coef != 0).any(0)
        X = self.solver.X
        both, _ = gather_rows(self.shards, torch.cat([X[is_sv], coef[:, is_sv].T.to(X.dtype)], 1))
        self.sv, self.coef = both[:, : X.shape[1]], both[:, X.shape[1] :].contiguous()  # (n_SV, D), (n_SV, B)
        self.intercept = self._bias()

    def forward(self, x: Tensor) -> Tensor:
        """Decision values ``(n, B)`` of the B problems, from the support vectors."""
        if self.sv is None:
            raise RuntimeError(f"{type(self).__name__} has no fitted model yet: run trainer.fit first")
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


class KernelSVMModule(ArgmaxEvaluation, DualSolverModule):
    """K one-vs-rest kernel SVMs solved in the dual, one decomposition iteration per training step.

    The K problems (y_ik = +1 for class k) share one solver, so the working sets' kernel rows
    come from one matrix product per step (see :class:`DualSolverModule`). Prediction uses the
    support vectors only.

    Args:
        kernel: ``"rbf"``, ``"poly"`` or ``"linear"``.
        C: cost of a margin violation, > 0.
        gamma: kernel coefficient, > 0 (RBF: exp(-gamma ||x - z||^2) on pixels / 255).
        degree, coef0: of the polynomial kernel.
        n_train: training-set size (the first n_train images of the training split; None: all).
        working_set_size: variables per decomposition iteration.
        tol: stopping tolerance on the maximal KKT violation.
        dtype: ``"float64"`` or ``"float32"`` for the kernel and the dual variables.

    Logs the solver's figures per step (see :class:`DualSolverModule`); per epoch ``train_acc``
    (from the solver's gradient, without kernel evaluations), ``val_acc``, ``test_acc``.
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
        super().__init__(kernel, C, gamma, n_train)
        self.save_hyperparameters()

    def _problems(self, X: Tensor, labels: Tensor) -> DecompositionSolver:
        self.labels = labels
        self.num_classes = int(self.shards.max(labels.max())) + 1  # every rank's classes
        Y = torch.where(labels.unsqueeze(0) == torch.arange(self.num_classes, device=self.device).unsqueeze(1), 1.0, -1.0)
        C = torch.full(Y.shape, float(self.hparams.C), dtype=self._solver_dtype, device=self.device)
        return self._solver(X, Y.to(self._solver_dtype), C)

    def _train_decisions(self, b: Tensor) -> Tensor:
        # f_k(x_i) = y_ik (G_ik + 1) + b_k: G = Q a - 1 and (Q a)_i = y_i (f(x_i) - b).
        s = self.solver
        return (s.Y * (s.G + 1) + b.unsqueeze(1)).T  # (N, K)

    def _primal_loss(self, b: Tensor) -> Tensor:
        s = self.solver
        margins = s.Y * self._train_decisions(b).T  # y_i f(x_i)
        return (s.C * (1 - margins).clamp_min(0)).sum(1)

    def on_train_epoch_end(self) -> None:
        if self.solver is not None:
            f = self._train_decisions(self._bias())
            correct, n = self.shards.sum(torch.tensor([float((f.argmax(1) == self.labels).sum()), len(self.labels)],
                                                      dtype=torch.float64, device=self.device))
            self.log("train_acc", float(correct / n), sync_dist=True)  # equal on every rank: the mean changes nothing


class KernelSVRModule(DualSolverModule):
    """Epsilon-support vector regression solved in the dual, one decomposition iteration per training step.

    LIBSVM's epsilon-SVR (see :class:`torchsvm.SVR`): 2N variables a, a* on the rows [X; X],
    labels +1 / -1, linear term epsilon -+ y, advanced by the decomposition solver (see
    :class:`DualSolverModule`). ``forward`` returns predictions ``(n, 1)``; the targets come from
    the DataModule's ``train_set`` (e.g. :class:`lightning_modules.RegressionDataModule`).

    Args:
        kernel, C, gamma, degree, coef0, n_train, working_set_size, tol, dtype: as
            :class:`KernelSVMModule` (C: cost of a deviation beyond epsilon).
        epsilon: half width of the tube inside which deviations cost nothing, >= 0.

    Logs the solver's figures per step; per epoch ``train_r2`` and ``train_mae`` (from the solver's
    gradient), ``val_r2``, ``val_mae``, ``test_r2``, ``test_mae`` (torchmetrics, right under DDP).
    """

    def __init__(
        self,
        kernel: Literal["rbf", "poly", "linear"] = "rbf",
        C: float = 1.0,
        epsilon: float = 0.1,
        gamma: float = 0.1,
        degree: int = 3,
        coef0: float = 0.0,
        n_train: int | None = 5000,
        working_set_size: int = 1024,
        tol: float = 1e-3,
        dtype: Literal["float64", "float32"] = "float64",
    ) -> None:
        super().__init__(kernel, C, gamma, n_train)
        if not epsilon >= 0:
            raise ValueError(f"Expected epsilon >= 0, got {epsilon}")
        self.save_hyperparameters()
        self.r2 = torch.nn.ModuleDict({stage: R2Score() for stage in ("val", "test")})
        self.mae = torch.nn.ModuleDict({stage: MeanAbsoluteError() for stage in ("val", "test")})

    def _problems(self, X: Tensor, target: Tensor) -> DecompositionSolver:
        if not target.is_floating_point() or target.ndim != 1:
            raise ValueError(f"Expected real targets of shape (N,), got {target.dtype} of shape {tuple(target.shape)}")
        dtype, n = self._solver_dtype, len(target)
        self.target = t = target.to(dtype)
        ones = torch.ones(n, dtype=dtype, device=self.device)
        Y = torch.cat([ones, -ones]).unsqueeze(0)
        C = torch.full_like(Y, float(self.hparams.C))
        eps = float(self.hparams.epsilon)
        p = torch.cat([eps - t, eps + t]).unsqueeze(0)
        # The rows [X; X]: each kernel row is computed over both copies (twice the kernel work of N).
        return self._solver(torch.cat([X, X]), Y, C, p)

    def _coefficients(self) -> Tensor:
        s, n = self.solver, len(self.target)
        coef = torch.zeros_like(s.alpha)
        coef[:, :n] = s.alpha[:, :n] - s.alpha[:, n:]  # a - a* on the first copy, 0 on the second
        return coef

    def _train_decisions(self, b: Tensor) -> Tensor:
        # Row i of the first copy: (Q a)_i = f(x_i) - b and G = Q a + p.
        s, n = self.solver, len(self.target)
        return (s.G[:, :n] - s.p[:, :n] + b.unsqueeze(1)).T  # (N, 1)

    def _primal_loss(self, b: Tensor) -> Tensor:
        s, n = self.solver, len(self.target)
        f = self._train_decisions(b).T  # (1, N)
        return (s.C[:, :n] * ((f - self.target).abs() - self.hparams.epsilon).clamp_min(0)).sum(1)

    def on_train_epoch_end(self) -> None:
        if self.solver is not None:
            f = self._train_decisions(self._bias())[:, 0]
            r, t = (f - self.target).double(), self.target.double()
            # Sums over every rank's rows: n, sum |r|, sum r^2, sum t, sum t^2.
            n, abs_r, sq_r, sum_t, sq_t = self.shards.sum(torch.stack(
                [torch.tensor(float(len(t)), dtype=torch.float64, device=t.device), r.abs().sum(), (r * r).sum(),
                 t.sum(), (t * t).sum()]))
            # Equal on every rank already; sync_dist's mean changes nothing (and keeps Lightning from warning).
            self.log("train_mae", float(abs_r / n), sync_dist=True)
            self.log("train_r2", float(1 - sq_r / (sq_t - sum_t * sum_t / n)), sync_dist=True)

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, t = batch
        f = self(x)[:, 0].to(torch.float32)
        t = t.to(torch.float32)
        self.r2[stage].update(f, t)
        self.mae[stage].update(f, t)
        self.log(f"{stage}_r2", self.r2[stage], on_epoch=True, prog_bar=True, metric_attribute=f"r2.{stage}")
        self.log(f"{stage}_mae", self.mae[stage], on_epoch=True, metric_attribute=f"mae.{stage}")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)[:, 0]
