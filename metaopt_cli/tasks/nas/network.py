"""The search network: cells whose edges mix their candidate operations with per-edge weights
[E, O] given to `forward` (softmax(α) while searching; a constant 0/1 mask for a derived
architecture, whose zero-weighted operations are then skipped), so that the same class trains
the supernet, a searched architecture and a random one. Used functionally
(torch.func.functional_call): its parameters are the inner state w, never θ."""
import torch
from torch import nn

from .operations import FactorizedReduce, PlainBatchNorm, operation, relu_conv_bn
from .space import Space, SearchSpace

STEM_MULTIPLIER = 3  # DARTS: the stem has 3C channels


class Cell(nn.Module):
    """Nodes fed by the two preprocessed cell inputs and earlier nodes through mixed edges."""

    def __init__(self, space: SearchSpace, c_prev_prev: int, c_prev: int, channels: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.space, self.reduction = space, reduction
        if space.kind is Space.conv:
            self.preprocess0 = (FactorizedReduce(c_prev_prev, channels) if reduction_prev
                                else relu_conv_bn(c_prev_prev, channels, 1, 1, 0))
            self.preprocess1 = relu_conv_bn(c_prev, channels, 1, 1, 0)
        else:  # every dense cell keeps the width: nothing to adapt
            self.preprocess0 = self.preprocess1 = nn.Identity()
        self.edges = nn.ModuleList(
            nn.ModuleList(operation(space.kind, name, channels, 2 if reduction and source < 2 else 1)
                          for name in space.operations)
            for _, source in space.edges)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                active: list[list[bool]] | None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        edge = 0
        for node in range(self.space.nodes):
            terms = []
            for source in range(node + 2):
                ops = self.edges[edge]
                terms += [weights[edge, o] * op(states[source]) for o, op in enumerate(ops)
                          if active is None or active[edge][o]]
                edge += 1
            # A node no chosen edge reaches (only in a hand-made mask) is zero, shaped as any other.
            states.append(sum(terms) if terms else 0 * self.edges[edge - node - 2][0](states[0]))
        nodes = states[2:]
        # DARTS concatenates a conv cell's nodes along channels; a dense cell averages them, so
        # that every cell keeps the width C and needs no preprocessing.
        return torch.cat(nodes, dim=1) if self.space.kind is Space.conv else sum(nodes) / len(nodes)


class SearchNetwork(nn.Module):
    """A stem, `cells` cells (conv: reduction cells at 1/3 and 2/3 of the depth, doubling the
    channels, as DARTS), global pooling and a linear classifier."""

    def __init__(self, space: SearchSpace, in_shape: tuple[int, int, int], num_classes: int, cells: int,
                 channels: int):
        super().__init__()
        self.space = space
        if space.kind is Space.conv:
            current = STEM_MULTIPLIER * channels
            self.stem = nn.Sequential(nn.Conv2d(in_shape[0], current, 3, padding=1, bias=False),
                                      PlainBatchNorm(current))
        else:
            current = channels
            self.stem = nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], channels))
        c_prev_prev, c_prev, width = current, current, channels
        reductions = {cells // 3, 2 * cells // 3} if space.kind is Space.conv else set()
        self.reductions = [i in reductions for i in range(cells)]
        cell_list, reduction_prev = [], False
        for reduction in self.reductions:
            width = 2 * width if reduction else width
            cell_list.append(Cell(space, c_prev_prev, c_prev, width, reduction, reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, (space.nodes * width if space.kind is Space.conv else width)
        self.cells = nn.ModuleList(cell_list)
        self.pool = nn.AdaptiveAvgPool2d(1) if space.kind is Space.conv else nn.Identity()
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor, normal: torch.Tensor, reduce: torch.Tensor | None = None,
                discrete: bool = False) -> torch.Tensor:
        """Logits of x with per-edge operation weights `normal` (and `reduce`, conv), [E, O] each.
        discrete: the weights are a constant mask (not a traced tensor), and the operations it
        weighs 0 are not run at all."""
        s0 = s1 = self.stem(x)
        for cell, reduction in zip(self.cells, self.reductions):
            weights = reduce if reduction else normal
            active = (weights != 0).tolist() if discrete else None
            s0, s1 = s1, cell(s0, s1, weights, active)
        return self.classifier(self.pool(s1).flatten(1))
