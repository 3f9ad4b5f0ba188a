"""A derived, discrete architecture as plain data (DARTS's genotype), and the 0/1 operation
weights that make the search's network train it.

A genotype is `{cell: [[[op, input], … k pairs] for each intermediate node]}` (JSON-able), cell
"normal" and, in the conv space, "reduce"; `input` indexes the node's candidate inputs (0 and 1
the cell's two inputs, i + 2 intermediate node i), as `space.edges` enumerates them.
"""
import json

import torch

from ...estimators.problem import Tensors

NONE = "none"  # the operation that cuts an edge; never part of a derived architecture
Genotype = dict[str, list[list[list]]]


def derive(meta_params: Tensors, space, k: int) -> Genotype:
    """DARTS's rule: per node, the k incoming edges whose strongest non-`none` operation has the
    largest softmax weight, each with that operation. θ's `alpha_<cell>` logits are [E, O]."""
    genotype = {}
    for cell in space.cell_kinds:
        weights = meta_params[f"alpha_{cell}"].detach().softmax(-1).cpu()
        # `none` is excluded from the choice but kept in the softmax: a strong `none` weakens
        # every other operation of its edge, as in DARTS's genotype().
        weights[:, _none_columns(space)] = -1.0
        strength, best_op = weights.max(-1)
        nodes = []
        for node in range(space.nodes):
            incoming = [e for e, (n, _) in enumerate(space.edges) if n == node]
            chosen = sorted(incoming, key=lambda e: -float(strength[e]))[:k]
            nodes.append([[space.operations[int(best_op[e])], space.edges[e][1]] for e in sorted(chosen)])
        genotype[cell] = nodes
    return genotype


def random_genotype(space, k: int, generator: torch.Generator) -> Genotype:
    """Uniform over the derived architectures of the space: per node, k distinct inputs, each
    with a uniform non-`none` operation (Li & Talwalkar 2019's random-search baseline)."""
    ops = [op for op in space.operations if op != NONE]
    genotype = {}
    for cell in space.cell_kinds:
        nodes = []
        for node in range(space.nodes):
            inputs = sorted(torch.randperm(node + 2, generator=generator, device=generator.device)[:k].tolist())
            choices = torch.randint(len(ops), (k,), generator=generator, device=generator.device).tolist()
            nodes.append([[ops[c], i] for c, i in zip(choices, inputs)])
        genotype[cell] = nodes
    return genotype


def mask(genotype: Genotype, space, device=None) -> dict[str, torch.Tensor]:
    """Per cell, the [E, O] 0/1 operation weights of the genotype: 1 at each chosen edge's
    operation, 0 elsewhere (the network skips an operation whose weight is exactly 0)."""
    index = {edge: e for e, edge in enumerate(space.edges)}
    masks = {}
    for cell, nodes in genotype.items():
        weights = torch.zeros(len(space.edges), len(space.operations), device=device)
        for node, pairs in enumerate(nodes):
            for op, source in pairs:
                weights[index[(node, source)], space.operations.index(op)] = 1.0
        masks[cell] = weights
    return masks


def as_text(genotype: Genotype) -> str:
    """One line for summary.json and the terminal."""
    return json.dumps(genotype, separators=(",", ":"))


def _none_columns(space) -> list[int]:
    return [o for o, op in enumerate(space.operations) if op == NONE]
