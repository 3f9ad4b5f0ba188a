"""Architecture search's protocol as the field reports it (DARTS; Li & Talwalkar 2019): derive
the searched cell, retrain it from scratch on several seeds, and set it beside the best of
`task.random_archs` architectures drawn uniformly from the same space.

Every architecture trains with the same budget (`task.eval_steps` SGD steps at `task.eval_lr`);
the random ones with one seed each, the best on validation then retrained on the same seeds as
the searched one, so that the two differ only in their architecture. Weights are the search
network's own, with the genotype's 0/1 operation weights: the same network class trains both.
"""
import logging
import math

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from ...functional import EVAL_CHUNK, minibatches, sample_inits
from ...progress import progress
from .genotype import Genotype, as_text, derive, mask, random_genotype

log = logging.getLogger(__name__)
# DARTS's retraining recipe, scaled to task.eval_steps: SGD with momentum, weight decay, a cosine
# learning rate and the gradient's norm clipped at 5 (Liu et al. 2019, §A.2; its train.py). The
# clip matters: a cell of chained skip connections multiplies its input (a dense cell of three
# nodes by up to 3 per cell), and without it such a cell diverges at an lr that suits the others.
MOMENTUM, WEIGHT_DECAY, GRAD_CLIP = 0.9, 3e-4, 5.0
SCORES = ("val_acc", "test_acc")
REPORTED = (*(f"{who}_{score}{stat}" for who in ("searched", "random_arch") for score in SCORES for stat in ("", "_std")),
            "genotype", "random_arch_genotype", "random_archs")


def evaluate_search(task, meta_params, generator: torch.Generator) -> dict:
    """The figures, the genotypes among them."""
    searched = derive(meta_params, task.space, task.top_k)
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    best = _best_random(task, generator)
    results = {}
    for who, genotype in (("searched", searched), ("random_arch", best)):
        scores = retrained_scores(task, genotype, task.eval_seeds, torch.Generator(generator.device).manual_seed(seed),
                                  f"evaluate: {who.replace('_', ' ')}, {task.eval_seeds} seeds")
        results.update(_mean_std(who, scores))
    results["genotype"] = as_text(searched)
    results["random_arch_genotype"] = as_text(best)
    results["random_archs"] = task.random_archs
    log.info(searched_vs_random(results))
    return results


def searched_vs_random(results: dict) -> str:
    """The comparison the field asks for, as a small table."""
    rows = [("searched", "searched"), (f"random (best of {results['random_archs']})", "random_arch")]
    width = max(len(label) for label, _ in rows)
    lines = [f"{'architecture':<{width}}  {'val acc':>15}  {'test acc':>15}"]
    for label, who in rows:
        cells = [f"{results[f'{who}_{s}']:.4f} ± {results[f'{who}_{s}_std']:.4f}" for s in SCORES]
        lines.append(f"{label:<{width}}  {cells[0]:>15}  {cells[1]:>15}")
    return "\n".join(lines)


def validate_search(task, meta_params, generator: torch.Generator) -> dict[str, float]:
    """Model selection: the derived cell's validation accuracy after one retraining."""
    genotype = derive(meta_params, task.space, task.top_k)
    val_acc = retrained_scores(task, genotype, 1, generator, "validate: searched", splits=("val",))["val_acc"]
    return {"searched_val_acc": val_acc.item()}


def retrained_scores(task, genotype: Genotype, seeds: int, generator: torch.Generator, desc: str,
                     splits=("val", "test")) -> dict[str, torch.Tensor]:
    """Accuracy on each split of `seeds` networks of the genotype trained from scratch: vectors."""
    weights = mask(genotype, task.space, task.device)
    params = _trained(task, weights, sample_inits(task.make_net, seeds, generator, task.device),
                      minibatches(len(task.data.train.y), task.eval_steps, seeds, task.batch_size, generator), desc)
    finite = torch.stack([value.flatten(1).isfinite().all(1) for value in params.values()]).all(0)
    if not finite.all():  # its accuracy is then chance's, which the figures would not say why
        log.warning(f"{desc}: {int((~finite).sum())} of {seeds} retrainings diverged; lower task.eval_lr")
    return {f"{split}_acc": _accuracy(task, params, weights, getattr(task.data, split)) for split in splits}


def _best_random(task, generator: torch.Generator) -> Genotype:
    """The random genotype whose one retraining scores best on validation; all from one
    initialisation and one sequence of minibatches."""
    genotypes = [random_genotype(task.space, task.top_k, generator) for _ in range(task.random_archs)]
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    val_acc = [retrained_scores(task, genotype, 1, torch.Generator(generator.device).manual_seed(seed),
                                f"evaluate: random architecture {i + 1}/{task.random_archs}", splits=("val",))["val_acc"]
               for i, genotype in enumerate(genotypes)]
    # A diverged run scores nan; it must never be the best.
    return genotypes[int(torch.nan_to_num(torch.cat(val_acc), nan=-math.inf).argmax())]


def _trained(task, weights, params, batches: torch.Tensor, desc: str):
    """SGD with momentum from `params` (stacked over seeds), each seed on its own minibatches.
    The operation weights are constants, so the network skips the operations they zero."""
    x, y = task.data.train.x, task.data.train.y

    def loss(p, inputs, targets):
        logits = _logits(task, p, inputs, weights)
        decay = sum((value ** 2).sum() for value in p.values())
        return F.cross_entropy(logits, targets) + WEIGHT_DECAY / 2 * decay

    grads_of = vmap(grad(loss))
    velocity = {name: torch.zeros_like(value) for name, value in params.items()}
    steps = batches.shape[0]
    with torch.no_grad():
        for t in progress(range(steps), desc):
            lr = task.eval_lr * 0.5 * (1 + math.cos(math.pi * t / steps))
            grads = grads_of(params, x[batches[t]], y[batches[t]])
            norm = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads.values()]).sum(0).sqrt()  # per seed
            scale = (GRAD_CLIP / (norm + 1e-6)).clamp(max=1.0)
            grads = {name: g * scale.view(-1, *[1] * (g.dim() - 1)) for name, g in grads.items()}
            velocity = {name: MOMENTUM * velocity[name] + grads[name] for name in params}
            params = {name: value - lr * velocity[name] for name, value in params.items()}
    return params


def _accuracy(task, params, weights, split) -> torch.Tensor:
    """Each network's accuracy on a whole split (a vector), a chunk at a time."""
    correct = 0.0
    with torch.no_grad():
        for i in range(0, len(split.y), EVAL_CHUNK):
            logits = vmap(lambda p: _logits(task, p, split.x[i:i + EVAL_CHUNK], weights))(params)
            correct = correct + (logits.argmax(-1) == split.y[i:i + EVAL_CHUNK]).float().sum(-1)
    return correct / len(split.y)


def _logits(task, params, x: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """The search network's logits with a genotype's constant weights: the operations they zero are skipped."""
    return functional_call(task.net, params, (x, weights["normal"], weights.get("reduce"), True))


def _mean_std(who: str, scores: dict[str, torch.Tensor]) -> dict[str, float]:
    summary = {}
    for name, values in scores.items():
        summary[f"{who}_{name}"] = values.mean().item()
        summary[f"{who}_{name}_std"] = values.std().item()
    return summary
