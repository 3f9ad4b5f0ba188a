"""Truncated backpropagation through time: backprop within windows of T steps only."""
import torch

from .. import distributed
from ..errors import UserError
from .problem import Problem, Tensors, share
from .state import InnerRun, OnlineRuns, Resample, check_stagger
from .truncation import check_truncation, check_truncation_fits, online_weight, windows
from .unroll import detached, gradient, leaves, scores_between, unroll


class TBPTT:
    needs_inner_loop = True

    def __init__(self, truncation: int, random_window: bool, online: bool, stagger: bool = False):
        check_truncation(truncation)
        if online and random_window:
            raise UserError("estimator.random_window and estimator.online exclude each other: choose one")
        check_stagger(stagger, online)
        if stagger and distributed.current().size > 1:
            raise UserError("estimator.stagger with tbptt runs as one process: a staggered run is one inner problem, "
                            "which ranks do not split; drop estimator.stagger, or use estimator=pes")
        self.truncation, self.random_window, self.online = truncation, random_window, online
        # Online: the inner runs in progress, each rank's block of the meta-batch's.
        self.runs = OnlineRuns(stagger, share=lambda problem: share(problem, distributed.current()),
                               layout=lambda problem: (getattr(problem, "runs", None), None))

    def check_horizon(self, horizon: int | None) -> None:
        check_truncation_fits(self.truncation, horizon)

    def estimate(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        self.check_horizon(problem.horizon)
        meta_params = leaves(meta_params)
        if self.online:
            return self._online_window(problem, meta_params)
        if self.random_window:
            return self._random_window(problem, meta_params, generator)
        state = problem.init(meta_params)
        grads = {name: torch.zeros_like(value) for name, value in meta_params.items()}
        meta_loss = torch.zeros((), device=grads[next(iter(grads))].device)
        for start, stop in windows(problem.horizon, self.truncation):
            # Cut the graph between windows; the first keeps θ's path into the first state.
            state = detached(state) if start > 0 else state
            if not scores_between(problem, start, stop):
                with torch.no_grad():
                    state, _ = unroll(problem, meta_params, state, start, stop)
                continue
            state, loss = unroll(problem, meta_params, state, start, stop)
            _check_reaches_meta_params(loss)
            for name, grad in gradient(loss, meta_params).items():
                grads[name] += grad
            meta_loss += loss.detach()
        return grads, {"meta_loss": meta_loss}

    def _random_window(self, problem: Problem, meta_params: Tensors, generator: torch.Generator):
        """RaT-BPTT (Feng et al. 2023): one window ending at a step drawn uniformly from T..K,
        scored by the meta-loss there."""
        stop = int(torch.randint(self.truncation, problem.horizon + 1, (), generator=generator, device=generator.device))
        start = stop - self.truncation
        state = problem.init(meta_params)
        if start > 0:
            with torch.no_grad():
                state, _ = unroll(problem, meta_params, state, 0, start)
        state, _ = unroll(problem, meta_params, state, start, stop)  # after no_grad, already cut from θ
        loss = problem.meta_loss(meta_params, state)
        _check_reaches_meta_params(loss)
        return gradient(loss, meta_params), {"meta_loss": loss.detach(), "window_end": stop}

    def _online_window(self, problem: Problem, meta_params: Tensors):
        """The next window of each inner run in progress (a run that reached its horizon starts
        again on this meta-step's `problem`); the runs weigh equally."""
        runs = self.runs.current(problem, lambda run, offset: _start(run, meta_params, offset))
        grads = {name: torch.zeros_like(value) for name, value in meta_params.items()}
        meta_loss = 0.0
        for run in runs:
            start, stop = run.next_window(self.truncation)
            state, loss = unroll(run.problem, meta_params, run.state, start, stop)
            loss = loss * (online_weight(run.problem, start, stop) / len(runs))
            if loss.requires_grad:
                for name, grad in gradient(loss, meta_params).items():
                    grads[name] += grad
            run.state, run.step = detached(state), stop
            meta_loss = meta_loss + loss.detach()
        return grads, {"meta_loss": meta_loss, "inner_step": runs[0].step}

    def state_dict(self) -> dict:
        return self.runs.state_dict()

    def load_state_dict(self, state: dict, resample: Resample) -> None:
        self.runs.load_state_dict(state, resample)


def _start(run: InnerRun, meta_params: Tensors, offset: int) -> None:
    """A fresh run, carried without a graph to step `offset`. Not detached when it starts at 0:
    the first window keeps θ's path into the first state."""
    state = run.problem.init(meta_params)
    if offset:
        with torch.no_grad():
            state, _ = unroll(run.problem, meta_params, state, 0, offset)
    run.state, run.step = state, offset


def _check_reaches_meta_params(loss) -> None:
    """θ may act on the inner loop only through its first state (MAML's initialisation):
    then a window that starts later has no path back to θ at all."""
    if not loss.requires_grad:
        raise UserError(
            "the meta-parameters reach this inner loop only through its first state, which a window "
            "starting after it cuts off: use estimator.truncation equal to task.horizon, or estimator=backprop"
        )
