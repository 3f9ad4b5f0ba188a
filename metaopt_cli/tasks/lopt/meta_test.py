"""Meta-test: train held-out networks (new seeds, a longer horizon) with the learned optimizer,
and with Adam and SGD at each learning rate of a small grid, the best kept: tuned baselines.
Every optimizer sees the same initialisations and minibatches; the curve is the loss on the
scored batch after every step, averaged over seeds."""
import torch

from ...estimators.problem import Tensors
from ...functional import minibatches, sample_inits
from ...progress import progress
from .optimizer import LearnedOptimizer

BASELINES = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def meta_test(task, meta_params: Tensors, generator: torch.Generator) -> tuple[dict[str, float], dict]:
    """The summary figures and the curves {name: [loss after step 0..T]}."""
    train = task.data.train
    inits = sample_inits(task.make_net, task.test_seeds, generator, task.device)
    batches = minibatches(len(train.y), task.test_horizon, task.test_seeds, task.batch_size, generator)
    scored_x, scored_y = task.scored_batch(generator)
    curves_run = 1 + sum(len(lrs) for lrs in task.baseline_lrs.values())
    bar = progress(desc="meta-test: networks trained", total=curves_run * task.test_seeds)

    def curve(make_optimizer) -> torch.Tensor:
        runs = []
        for seed in range(task.test_seeds):
            net = task.make_net().to(task.device)
            net.load_state_dict({name: value[seed] for name, value in inits.items()}, strict=False)
            optimizer = make_optimizer(net.parameters())
            losses = [_loss(net, scored_x, scored_y)]
            for t in range(task.test_horizon):
                optimizer.zero_grad()
                batch = batches[t, seed]
                torch.nn.functional.cross_entropy(net(train.x[batch]), train.y[batch]).backward()
                optimizer.step()
                losses.append(_loss(net, scored_x, scored_y))
            runs.append(torch.tensor(losses))
            bar.update()
        # A diverged run's nan would hide the others: count it as never improving on the start.
        return torch.nan_to_num(torch.stack(runs), nan=runs[0][0].item(), posinf=runs[0][0].item()).mean(0)

    curves = {"lopt": curve(lambda params: LearnedOptimizer(params, meta_params, task.rule))}
    results = {}
    for name, optimizer_class in BASELINES.items():
        tried = {lr: curve(lambda params: optimizer_class(params, lr=lr)) for lr in task.baseline_lrs[name]}
        best_lr = min(tried, key=lambda lr: tried[lr][-1].item())
        curves[name], results[f"{name}_best_lr"] = tried[best_lr], best_lr
    bar.close()
    target = curves["adam"][-1].item()
    for name, values in curves.items():
        results[f"{name}_final_loss"] = values[-1].item()
        if name != "adam":  # steps to reach tuned Adam's final loss; -1: not within the horizon
            reached = (values <= target).nonzero()
            results[f"{name}_steps_to_adam"] = int(reached[0]) if len(reached) else -1
    results["test_horizon"] = task.test_horizon
    return results, {name: values.tolist() for name, values in curves.items()}


@torch.no_grad()
def _loss(net, x, y) -> float:
    return torch.nn.functional.cross_entropy(net(x), y).item()
