"""The DARTS search space: a cell of `nodes` intermediate nodes, each fed by the cell's two
inputs and every earlier node through one edge per input, each edge a choice among
`operations` (Liu et al. 2019, §2.1).

Node j (0-based) takes inputs 0 (the cell before the previous), 1 (the previous cell) and
i + 2 (node i < j): j + 2 candidate edges. A cell's edges are enumerated node by node, inputs
in order, so that the α logits of a cell are one [E, O] tensor."""
from dataclasses import dataclass

from ...config.tasks import SearchSpaceKind as Space
from ...errors import UserError


# DARTS's candidate operations (its genotypes.PRIMITIVES) and two it leaves out by default.
CONV_OPERATIONS = ("none", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "max_pool_3x3", "avg_pool_3x3",
                   "dil_conv_3x3", "dil_conv_5x5", "conv_3x3")
# The dense analogues: no op, identity, and a C×C linear map followed by nothing, a ReLU or a tanh,
# so that the search chooses both whether an edge computes and which non-linearity it has.
DENSE_OPERATIONS = ("none", "skip_connect", "linear", "linear_relu", "linear_tanh")
OPERATIONS = {Space.conv: CONV_OPERATIONS, Space.dense: DENSE_OPERATIONS}
# What task.operations=null searches: DARTS's eight (its PRIMITIVES, in its order), or every dense one.
DEFAULT_OPERATIONS = {Space.conv: ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                   "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"),
                      Space.dense: DENSE_OPERATIONS}
CELL_INPUTS = 2  # the first node's candidate inputs: what top_k may be at most


def cell_edges(nodes: int) -> list[tuple[int, int]]:
    """(node, input) of each edge of a cell, in the order of α's rows."""
    return [(node, source) for node in range(nodes) for source in range(node + CELL_INPUTS)]


@dataclass(frozen=True)
class SearchSpace:
    kind: Space
    nodes: int
    operations: tuple[str, ...]

    @property
    def edges(self) -> list[tuple[int, int]]:
        return cell_edges(self.nodes)

    @property
    def cell_kinds(self) -> tuple[str, ...]:
        """The cells α is learned for: the dense space stacks normal cells only."""
        return ("normal", "reduce") if self.kind is Space.conv else ("normal",)

    @property
    def alpha_shape(self) -> tuple[int, int]:
        return len(self.edges), len(self.operations)


def search_space(kind: str | Space, nodes: int, operations: list[str] | None, top_k: int) -> SearchSpace:
    """The space the settings describe (operations None: the space's default ones), or a UserError
    naming the bad setting and the fix."""
    kind = Space(kind)
    operations = list(DEFAULT_OPERATIONS[kind]) if operations is None else operations
    if nodes < 1:
        raise UserError(f"task.nodes must be at least 1 (a cell computes its output from its nodes), got {nodes}")
    valid = OPERATIONS[kind]
    unknown = [name for name in operations if name not in valid]
    if unknown:
        raise UserError(f"task.operations: unknown operation(s) {', '.join(unknown)} for task.space={kind.value}; "
                        f"the valid names are {', '.join(valid)}")
    if len(set(operations)) != len(operations):
        raise UserError(f"task.operations names an operation twice: {', '.join(operations)}; list each once")
    if not [name for name in operations if name != "none"]:
        raise UserError("task.operations needs an operation besides none, which a derived architecture never picks")
    if not 1 <= top_k <= CELL_INPUTS:
        raise UserError(f"task.top_k={top_k}: each node keeps its top_k strongest incoming edges, and the first node "
                        f"has only {CELL_INPUTS} inputs; use 1 or 2 (DARTS: 2)")
    return SearchSpace(kind, nodes, tuple(operations))
