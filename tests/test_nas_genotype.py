"""task=nas's derived architectures: DARTS's derivation rule, the 0/1 weights that train a
genotype, uniform random genotypes, and the pictures drawn from them."""
import json

import torch

from metaopt_cli.tasks.nas import picture
from metaopt_cli.tasks.nas.genotype import as_text, derive, mask, random_genotype
from metaopt_cli.tasks.nas.space import search_space

OPS = ["none", "skip_connect", "sep_conv_3x3", "max_pool_3x3"]
SPACE = search_space("conv", 3, OPS, 2)  # edges: node 0 ← 0, 1; node 1 ← 0, 1, 2; node 2 ← 0, 1, 2, 3


def logits(choices: dict[tuple[int, int], tuple[str, float]]) -> torch.Tensor:
    """α whose softmax puts `weight` on the named op of each listed (node, input) edge."""
    alpha = torch.zeros(len(SPACE.edges), len(OPS))
    for edge, (op, weight) in choices.items():
        alpha[SPACE.edges.index(edge), OPS.index(op)] = weight
    return alpha


def test_derive_keeps_the_strongest_non_none_edges_per_node():
    normal = logits({(0, 0): ("sep_conv_3x3", 1.0), (0, 1): ("skip_connect", 2.0),
                     # node 1: `none` dominates input 2 but is never chosen; its best other op is weak
                     (1, 0): ("max_pool_3x3", 3.0), (1, 1): ("sep_conv_3x3", 2.0), (1, 2): ("none", 9.0),
                     (2, 3): ("skip_connect", 4.0), (2, 2): ("sep_conv_3x3", 3.0), (2, 0): ("max_pool_3x3", 1.0)})
    reduce = logits({(0, 0): ("max_pool_3x3", 1.0)})
    genotype = derive({"alpha_normal": normal, "alpha_reduce": reduce}, SPACE, 2)

    assert genotype["normal"] == [[["sep_conv_3x3", 0], ["skip_connect", 1]],
                                  [["max_pool_3x3", 0], ["sep_conv_3x3", 1]],
                                  [["sep_conv_3x3", 2], ["skip_connect", 3]]]
    assert genotype["reduce"][0][0] == ["max_pool_3x3", 0]
    assert all(op != "none" for cell in genotype.values() for node in cell for op, _ in node)
    assert json.loads(as_text(genotype)) == genotype


def test_mask_marks_each_chosen_edge_once_and_derives_back():
    genotype = random_genotype(SPACE, 2, torch.Generator().manual_seed(3))
    weights = mask(genotype, SPACE)

    assert set(weights) == {"normal", "reduce"}
    for cell, cell_weights in weights.items():
        assert cell_weights.shape == (len(SPACE.edges), len(OPS))
        assert cell_weights.sum() == 2 * SPACE.nodes and cell_weights.sum(-1).max() == 1
    assert derive({f"alpha_{cell}": 10 * w for cell, w in weights.items()}, SPACE, 2) == genotype


def test_random_genotypes_are_uniform_over_the_derived_architectures():
    generator = torch.Generator().manual_seed(0)
    draws = [random_genotype(SPACE, 2, generator) for _ in range(300)]
    ops, inputs_of_last = {}, {}
    for genotype in draws:
        for cell in genotype.values():
            for node, pairs in enumerate(cell):
                sources = [source for _, source in pairs]
                assert len(set(sources)) == 2 and all(0 <= s < node + 2 for s in sources)
                for op, source in pairs:
                    ops[op] = ops.get(op, 0) + 1
                    if node == 2:
                        inputs_of_last[source] = inputs_of_last.get(source, 0) + 1
    assert "none" not in ops and set(ops) == set(OPS) - {"none"}
    # 300 draws × 2 cells × 3 nodes × 2 edges over 3 ops; 600 picks of the last node's 4 inputs
    assert all(abs(count - 1200) < 150 for count in ops.values())
    assert all(abs(count - 300) < 75 for count in inputs_of_last.values())
    assert random_genotype(SPACE, 2, torch.Generator().manual_seed(1)) == \
        random_genotype(SPACE, 2, torch.Generator().manual_seed(1))


def test_pictures_draw_cells_and_the_logged_alphas(tmp_path):
    alpha = {f"alpha_{cell}": torch.randn(len(SPACE.edges), len(OPS)) for cell in SPACE.cell_kinds}
    picture.save_cell_picture(derive(alpha, SPACE, 2), tmp_path / "cell.png")
    metrics = tmp_path / "metrics.jsonl"
    values = {f"alpha_{cell}_{edge}_{op}": 1 / len(OPS) for cell in SPACE.cell_kinds
              for edge in range(len(SPACE.edges)) for op in OPS}  # as the task's log_values names them
    metrics.write_text("".join(json.dumps({"step": step, "meta_loss": 1.0, **values}) + "\n" for step in range(1, 4)))

    assert picture.save_alphas_picture(SPACE, metrics, tmp_path / "alphas.png")
    assert (tmp_path / "cell.png").stat().st_size > 0 and (tmp_path / "alphas.png").stat().st_size > 0
    metrics.write_text(json.dumps({"step": 1, "meta_loss": 1.0}) + "\n")
    assert not picture.save_alphas_picture(SPACE, metrics, tmp_path / "none.png")
