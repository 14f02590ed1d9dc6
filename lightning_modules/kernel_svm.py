"""LightningModules solving kernel SVMs in the dual with the decomposition solver, one outer iteration per step:
classification (:class:`KernelSVMModule`, one-vs-one like :class:`torchsvm.SVC`) and epsilon-SVR (:class:`KernelSVRModule`)."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, R2Score

from lightning_modules._evaluation import ArgmaxEvaluation, log_hp_metric
from torchsvm import SVC, SVR
from torchsvm.distributed import LOCAL, Collectives, Shards, block_of, gather_rows
from torchsvm.kernels import kernel_function
from torchsvm.solvers.stepped import DecompositionProblems
from torchsvm.svm import BaseLibSVM
from torchsvm.svm import problems as svm_problems
from torchsvm.svm.modules import DecisionHead, SVMModule
from torchsvm.validation import check_positive

__all__ = ["DualSolverModule", "KernelSVMModule", "KernelSVRModule"]


class DualSolverModule(pl.LightningModule):
    """What the kernel modules share: the estimator's dual problems (:class:`torchsvm.SVC`'s or
    :class:`torchsvm.SVR`'s construction, kernel and kernel dtype) on the first ``n_train``
    training samples, advanced one outer iteration of the decomposition solver per training step
    (:class:`~torchsvm.solvers.stepped.DecompositionProblems`; the batch only paces the steps: the
    dual is solved on the whole training set) and stopped once every KKT violation is <= ``tol``;
    the solver's figures logged per step; the fitted model (support vectors, coefficients, biases)
    kept in checkpoints and used by ``forward`` (the estimators' decision values).

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
        self.solver: DecompositionProblems | None = None
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
        self._resume: dict | None = None  # a checkpoint's solver state, loaded once the solver is built

    def _estimator(self) -> BaseLibSVM:
        """The estimator whose problems, kernel and kernel dtype this module solves (not fitted)."""
        raise NotImplementedError

    def _solver_params(self) -> dict:
        """The estimator arguments both modules pass alike: kernel, tolerance, the decomposition solver."""
        h = self.hparams
        return dict(kernel=h.kernel, gamma=h.gamma, degree=h.degree, coef0=h.coef0, tol=h.tol, solver="decomposition",
                    working_set_size=h.working_set_size, kernel_dtype=h.kernel_dtype, device=self.device)

    def _finish_hparams(self, dtype: str | None) -> None:
        """After ``save_hyperparameters(ignore=["dtype"])``: read the old ``dtype`` argument (checkpoints
        written before it was renamed) as ``kernel_dtype``, then check the parameters as the estimator does."""
        if dtype is not None:
            warnings.warn("dtype is now kernel_dtype (the solver's state is float64 either way, as the estimators')",
                          FutureWarning, stacklevel=3)
            self.hparams.kernel_dtype = dtype
        svm_problems.check_params(self._estimator())

    @property
    def kernel(self):
        """``k(A, Z)``: the estimators' kernel dispatch (:func:`torchsvm.kernels.kernel_function`)."""
        h = self.hparams
        return kernel_function(h.kernel, h.gamma, h.degree, h.coef0)

    # -- fit ---------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or getattr(dm, "train_set", None) is None:
            raise RuntimeError(f"{type(self).__name__} needs a DataModule with a train_set (e.g. MNISTDataModule)")
        x, target = dm.train_set.tensors
        n = len(target) if self.hparams.n_train is None else min(self.hparams.n_train, len(target))
        rows = slice(0, n)
        if self.trainer.world_size > 1:  # this rank's block of the n rows
            self.shards = Shards()
            rows = block_of(n, self.shards.rank, self.shards.world_size)
        self.X_train = x[rows].flatten(1).to(self.device, torch.float64)  # float64, as the estimators keep SVs
        self.target = target[rows].to(self.device)
        est = self._estimator()
        problems, _ = svm_problems.make_problems(est, self.X_train, self.target.cpu().numpy(), None, self.shards)
        self.problem_rows = problems.rows  # which row of X each variable sits on (epsilon-SVR: 2 per row)
        Xk = self.X_train.to(svm_problems.kernel_dtype(est, self.device, n))
        # The estimators' own translation into the stepping solver (their working-set rule and tol).
        self.solver = svm_problems.stepped(est, Xk, self.kernel, problems, self.shards)
        if self._resume is not None:  # --ckpt_path: continue where the checkpoint's fit stopped
            self._check_same_problem(self._resume["problem"])
            self.solver.load_state_dict(self._resume["state"])
            self._resume = None

    # Hyperparameters that define the dual problems (tol only stops them: a resumed fit may change it).
    _PROBLEM_PARAMS = ("kernel", "C", "gamma", "degree", "coef0", "n_train", "working_set_size", "multi_class",
                       "kernel_dtype", "epsilon")

    def _problem_fingerprint(self) -> dict[str, Any]:
        """What a checkpoint's solver state belongs to: the problem's hyperparameters and its training rows
        (count, sums of X, X^2 and the targets over every rank)."""
        h = self.hparams
        X, t = self.X_train, self.target.to(torch.float64)
        sums = self.shards.sum(torch.stack([X.new_tensor(float(len(X))), X.sum(), (X * X).sum(), t.sum(), (t * t).sum()]))
        return {"params": {k: h[k] for k in self._PROBLEM_PARAMS if k in h}, "data": [float(v) for v in sums.cpu()]}

    def _check_same_problem(self, saved: dict[str, Any]) -> None:
        """Refuse a checkpoint of another problem, naming what differs."""
        mine = self._problem_fingerprint()
        differ = [f"{k}: checkpoint {saved['params'].get(k)!r}, now {v!r}" for k, v in mine["params"].items()
                  if saved["params"].get(k) != v]
        if not torch.allclose(torch.tensor(saved["data"]), torch.tensor(mine["data"]), rtol=1e-9, atol=0):
            differ.append(f"training rows: checkpoint (n, sum X, sum X^2, sum y, sum y^2) = {saved['data']}, now "
                          f"{mine['data']}")
        if differ:
            raise ValueError(f"{type(self).__name__}: the checkpoint's solver state belongs to another problem; "
                             "resume with the configuration it was written with, or start a new fit. Differences: "
                             + "; ".join(differ))

    def training_step(self, batch: Any, batch_idx: int) -> None:
        s = self.solver
        inner_before = s.n_inner
        converged = s.step()  # also refreshes s.gap, the KKT violations of the current iterate
        dual = s.dual_objective()
        primal = s.primal_objective(s.bias())
        self.log_dict({  # the whole problem's figures, equal on every rank: no sync needed
            "solver/dual_objective": float(dual.sum()),
            "solver/duality_gap": float((primal - dual).sum() / primal.sum().abs().clamp_min(1e-12)),
            "solver/kkt_violation": float(s.gap.max()),
            "solver/n_support_vectors": float(self.shards.sum((self._row_coefficients() != 0).any(0).sum())),
            "solver/inner_smo_steps": float(s.n_inner - inner_before),
        }, on_step=True, on_epoch=False)
        self.log("kkt", float(s.gap.max()), prog_bar=True, on_step=True, on_epoch=False, logger=False)
        self.optimizers().step()  # no-op: advances global_step
        if converged:  # every problem's KKT violation <= tol: say so, the progress bar just stops
            self.trainer.should_stop = True
            n_sv = int(self.shards.sum((self._row_coefficients() != 0).any(0).sum()))
            rank_zero_info(f"{type(self).__name__}: the dual solver converged after {self.global_step} steps "
                           f"(max KKT violation {float(s.gap.max()):.3g} <= tol={self.hparams.tol}, {n_sv} support "
                           "vectors); training stops here.")

    def _row_coefficients(self) -> Tensor:
        """``(P, n_rows)`` coefficients of the kernel per training row (epsilon-SVR: a - a*)."""
        coef = self.solver.coefficients()
        if self.problem_rows is None:
            return coef
        return coef.new_zeros(coef.shape[0], len(self.X_train)).index_add_(1, self.problem_rows, coef)

    def _snapshot(self) -> None:
        """Keep the support vectors and coefficients of the current iterate (used to predict).

        Taken where they are read: before validation, into checkpoints, at the end of fit (on every
        rank alike: under DDP each rank's support vectors are gathered, in rank order)."""
        coef = self._row_coefficients()
        is_sv = (coef != 0).any(0)
        D = self.X_train.shape[1]
        both, _ = gather_rows(self.shards, torch.cat([self.X_train[is_sv], coef[:, is_sv].T], 1))
        self.sv, self.coef = both[:, :D], both[:, D:].contiguous()  # (n_SV, D), (n_SV, P)
        self.intercept = self.solver.bias()

    def to_module(self, output: str = "decision_function") -> nn.Module:
        """The fitted model as a plain torch module (flattened images in, as :meth:`torchsvm.SVC.to_module`'s
        module out: ``decision_function`` in the estimator's shape, or ``predict``: the class index), to export
        (``torchsvm export --ckpt``)."""
        if self.sv is None:
            raise RuntimeError(f"{type(self).__name__} has no fitted model yet: run trainer.fit first")
        h = self.hparams
        svm = SVMModule(self.sv.to(torch.float64), self.coef.T.to(torch.float64), self.intercept.to(torch.float64),
                        kernel=h.kernel, gamma=h.gamma, degree=h.degree, coef0=h.coef0, head=self._head(output))
        return nn.Sequential(nn.Flatten(), svm).to(self.sv.device)  # the head's buffers beside the model's

    def _head(self, output: str) -> DecisionHead:
        raise NotImplementedError

    def decision_function(self, x: Tensor) -> Tensor:
        """``(n, P)`` decision values of the P problems, from the support vectors (the estimators' code)."""
        if self.sv is None:
            raise RuntimeError(f"{type(self).__name__} has no fitted model yet: run trainer.fit first")
        return svm_problems.decision_values(self.kernel, x.flatten(1).to(self.sv.dtype), self.sv, self.coef, self.intercept)

    def on_train_epoch_end(self) -> None:
        """Training-set figures of the current iterate, from the fitted model on this rank's rows, summed over ranks."""
        if self.solver is not None:
            self._snapshot()
            self._log_train_metrics(self(self.X_train))

    def _log_train_metrics(self, predictions: Tensor) -> None:
        raise NotImplementedError

    def on_validation_epoch_start(self) -> None:
        if self.solver is not None:
            self._snapshot()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.solver is not None:
            self._snapshot()
            # The solver's state (every rank's rows under DDP), so that --ckpt_path continues the fit.
            state = _to_cpu(self.solver.state_dict())
            checkpoint["dual_solver"] = {"state": state, "problem": self._problem_fingerprint()}
        if self.sv is not None:
            checkpoint["kernel_svm"] = {"sv": self.sv.cpu(), "coef": self.coef.cpu(), "intercept": self.intercept.cpu()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resume = checkpoint.get("dual_solver")  # used if a fit follows (on_fit_start)
        state = checkpoint.get("kernel_svm")
        if state is not None:
            self.sv, self.coef, self.intercept = (t.to(torch.float64) for t in
                                                  (state["sv"], state["coef"], state["intercept"]))

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


def _to_cpu(state: Any) -> Any:
    """A solver state with its tensors on the CPU (checkpoints load on any device)."""
    if isinstance(state, Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_cpu(v) for v in state]
    return state


class KernelSVMModule(ArgmaxEvaluation, DualSolverModule):
    """Kernel SVM classification solved in the dual, one decomposition iteration per training step.

    The problems are :class:`torchsvm.SVC`'s (the same construction, kernel and defaults): LIBSVM's
    one-vs-one pairs, each solved on its two classes' rows (``multi_class="ovo"``), or one
    one-vs-rest problem per class sharing one solver (``"ovr"``); kernel values in
    ``kernel_dtype``, the solver's state in float64. ``forward`` gives per-class scores
    ``(n, n_classes)`` (one-vs-one: :class:`~torchsvm.SVC`'s ``decision_function_shape="ovr"``,
    votes plus confidences), so the largest wins. Prediction uses the support vectors only.

    Args:
        kernel: ``"rbf"``, ``"poly"`` or ``"linear"``.
        C: cost of a margin violation, > 0.
        gamma: kernel coefficient, > 0 (RBF: exp(-gamma ||x - z||^2) on pixels / 255).
        degree, coef0: of the polynomial kernel.
        n_train: training-set size (the first n_train images of the training split; None: all).
        working_set_size: variables per decomposition iteration.
        tol: stopping tolerance on the maximal KKT violation.
        multi_class: ``"ovo"`` or ``"ovr"``, as :class:`torchsvm.SVC`.
        kernel_dtype: ``"float32"`` or ``"float64"``, as :class:`torchsvm.SVC`.
        dtype: the old name of ``kernel_dtype`` (read from older checkpoints; warns).

    Logs the solver's figures per step (see :class:`DualSolverModule`); per epoch ``train_acc``
    (the current iterate's model on the training rows), ``val_acc``, ``test_acc``.
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
        multi_class: Literal["ovo", "ovr"] = "ovo",
        kernel_dtype: Literal["float32", "float64"] = "float32",
        dtype: Literal["float64", "float32"] | None = None,
    ) -> None:
        super().__init__(kernel, C, gamma, n_train)
        self.save_hyperparameters(ignore=["dtype"])
        self._finish_hparams(dtype)

    def _estimator(self) -> SVC:
        return SVC(C=self.hparams.C, multi_class=self.hparams.multi_class, **self._solver_params())

    def forward(self, x: Tensor) -> Tensor:
        dec = self.decision_function(x)
        n_classes = self._n_classes()
        if n_classes == 2:  # one problem, positive: the second class (scikit-learn's sign)
            return torch.cat([-dec, dec], 1)
        return svm_problems.ovr_from_ovo(dec, n_classes) if self.hparams.multi_class == "ovo" else dec

    def _head(self, output: str) -> DecisionHead:
        k = self._n_classes()
        # The module predicts by the largest one-vs-rest shaped value (its argmax): break_ties.
        return DecisionHead("classifier", output, list(range(k)), self.hparams.multi_class == "ovo", ovr_shape=True,
                            break_ties=True)

    def _n_classes(self) -> int:
        P = self.coef.shape[1]
        if self.hparams.multi_class == "ovr":
            return 2 if P == 1 else P
        return int(round((1 + (1 + 8 * P) ** 0.5) / 2))  # P = K (K - 1) / 2 pairs

    def _log_train_metrics(self, scores: Tensor) -> None:
        correct = float((scores.argmax(1) == self.target).sum())
        correct, n = self.shards.sum(torch.tensor([correct, len(self.target)], dtype=torch.float64, device=self.device))
        self.log("train_acc", float(correct / n), sync_dist=True)  # equal on every rank: the mean changes nothing


class KernelSVRModule(DualSolverModule):
    """Epsilon-support vector regression solved in the dual, one decomposition iteration per training step.

    :class:`torchsvm.SVR`'s problem (2N variables a, a* on the rows [X; X], labels +1 / -1, linear
    term epsilon -+ y), advanced by the decomposition solver (see :class:`DualSolverModule`).
    ``forward`` returns predictions ``(n, 1)``; the targets come from the DataModule's ``train_set``
    (e.g. :class:`lightning_modules.RegressionDataModule`).

    Args:
        kernel, C, gamma, degree, coef0, n_train, working_set_size, tol, kernel_dtype, dtype: as
            :class:`KernelSVMModule` (C: cost of a deviation beyond epsilon).
        epsilon: half width of the tube inside which deviations cost nothing, >= 0.

    Logs the solver's figures per step; per epoch ``train_r2`` and ``train_mae`` (the current
    iterate's model on the training rows), ``val_r2``, ``val_mae``, ``test_r2``, ``test_mae``
    (torchmetrics, right under DDP).
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
        kernel_dtype: Literal["float32", "float64"] = "float32",
        dtype: Literal["float64", "float32"] | None = None,
    ) -> None:
        super().__init__(kernel, C, gamma, n_train)
        if not epsilon >= 0:
            raise ValueError(f"Expected epsilon >= 0, got {epsilon}")
        self.save_hyperparameters(ignore=["dtype"])
        self._finish_hparams(dtype)
        self.r2 = torch.nn.ModuleDict({stage: R2Score() for stage in ("val", "test")})
        self.mae = torch.nn.ModuleDict({stage: MeanAbsoluteError() for stage in ("val", "test")})

    def _estimator(self) -> SVR:
        return SVR(C=self.hparams.C, epsilon=self.hparams.epsilon, **self._solver_params())

    def forward(self, x: Tensor) -> Tensor:
        return self.decision_function(x)

    def _head(self, output: str) -> DecisionHead:
        return DecisionHead("regressor", output)

    def _log_train_metrics(self, predictions: Tensor) -> None:
        r, t = (predictions[:, 0] - self.target).double(), self.target.double()
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

    def on_validation_epoch_end(self) -> None:
        log_hp_metric(self, "val_r2")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)[:, 0]
