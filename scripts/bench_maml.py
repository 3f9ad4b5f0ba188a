"""Meta-iterations per second and peak memory of metaopt's MAML against `higher` and `torchopt`.

All three run the same computation on the same network and shapes: N-way K-shot episodes of
random images (a speed benchmark needs no real data), a meta-batch of tasks, K inner SGD steps
differentiated through (second order), the mean query loss over tasks, one outer Adam step.

- metaopt: what `metaopt train task=maml estimator=backprop` does per meta-step: a
  `MAMLProblem` over an `Episodes` batch (its tasks batched with vmap), `Backprop.estimate`,
  the Adam step.
- higher: the canonical loop, one `higher.innerloop_ctx` per task, query loss backward per task.
- torchopt: its MAML example's idiom, `torchopt.MetaSGD` on the module with
  `extract_state_dict`/`recover_state_dict` around each task.

Before timing, the three meta-gradients of the same initial weights on the same episodes are
compared in float64 at a small image size, so the benchmark never times different computations:
they agree to round-off (this check is what found that torch's fused batch norm loses
second-order terms under vmap, which metaopt's plain-op batch norm now avoids). A difference
beyond round-off warns; one as large as first- against second-order MAML's (about half the
scale) stops the run.

Timing interleaves the libraries round by round (drift on a busy machine hits all of them
alike) and reports the median. Peak memory is `metaopt_cli.memory.measure_peak` around one
meta-iteration: the bytes it adds over what was allocated before it, from the CUDA allocator's
peak or, on CPU, followed tensor by tensor.

On CPU, metaopt's tasks batched under vmap make each tensor meta-batch times larger and the
peak several times higher than the peers' one-task-at-a-time loops. glibc's malloc serves such
blocks with fresh mmaps and returns them on free, so their page faults (sys time) are much of
metaopt's time at 84x84; MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736
in the environment shows how much. With `--batching loop` metaopt goes task by task as the peers
do: backprop then holds one task's graph at a time and batch norm runs torch's fused kernel
(exact outside vmap), and its time and peak memory match theirs. The default, `auto`, is
metaopt's own (task.batching=auto): vmap on CUDA, the loop on a CPU for these convolutional
backbones.

    python scripts/bench_maml.py --device cpu --image-size 84 --iterations 5
    python scripts/bench_maml.py --device cuda --backbone resnet12 --precision bf16

The last line printed is one JSON object with the figures.
"""
import argparse
import copy
import functools
import importlib.util
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from metaopt_cli.backbones.conv4 import Conv4
from metaopt_cli.backbones.norm import NORM_KINDS
from metaopt_cli.backbones.resnet12 import ResNet12
from metaopt_cli import compiled
from metaopt_cli.config.commands import Compile
from metaopt_cli.config.tasks import Batching
from metaopt_cli.data.episodes import Episodes
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.memory import measure_peak
from metaopt_cli.precision import precision
from metaopt_cli.tasks.fewshot.maml import resolved_batching
from metaopt_cli.tasks.fewshot.maml_problem import MAMLProblem

WAYS, SHOTS, QUERIES = 5, 1, 15
INNER_LR, OUTER_LR = 0.01, 1e-3
CHECK_IMAGE_SIZE = 28
ROUND_OFF = 1e-9  # relative difference float64 leaves between equal computations
SAME_COMPUTATION = 1e-2  # first-order against second-order MAML differs by about 0.5
INSTALL_PEERS = 'pip install -e ".[bench]"'
PEERS = ("higher", "torchopt")


def make_backbone(name: str, image_size: int, norm: str) -> nn.Module:
    in_shape = (3, image_size, image_size)
    if name == "conv4":
        return Conv4(in_shape=in_shape, num_outputs=WAYS, width=32, norm=norm)
    return ResNet12(in_shape=in_shape, num_outputs=WAYS, widths=(64, 160, 320, 640), norm=norm)


def random_episodes(tasks: int, image_size: int, generator: torch.Generator, device, dtype) -> Episodes:
    """`tasks` N-way K-shot episodes of random images, labels class-major as `sample_episodes` gives them."""

    def images(per_class: int) -> torch.Tensor:
        x = torch.randn(tasks, WAYS * per_class, 3, image_size, image_size, generator=generator, dtype=dtype)
        return x.to(device)

    def labels(per_class: int) -> torch.Tensor:
        return torch.arange(WAYS, device=device).repeat_interleave(per_class).expand(tasks, -1).contiguous()

    return Episodes(images(SHOTS), labels(SHOTS), images(QUERIES), labels(QUERIES))


class MetaoptMAML:
    """This project's MAML meta-step: MAMLProblem + Backprop, as the trainer runs it."""

    def __init__(self, net: nn.Module, episodes: Episodes, inner_steps: int, batching: str, compile: Compile):
        names = tuple(name for name, _ in net.named_parameters())
        self.problem = MAMLProblem(net, episodes, inner_steps, INNER_LR, names, first_order=False, proximal=0.0,
                                   batching=batching)
        self.meta_params = {name: value.detach().clone().requires_grad_() for name, value in net.named_parameters()}
        self.optimizer = torch.optim.Adam(self.meta_params.values(), lr=OUTER_LR)
        self.estimator = Backprop(checkpoint=False)
        self.generator = torch.Generator(episodes.support_x.device)
        self.compile = compile
        compiled.start(compile)

    def meta_gradient(self) -> dict[str, torch.Tensor]:
        with compiled.compiling(self.compile):  # trainer.compile's inner steps
            grads, _ = self.estimator.estimate(self.problem, self.meta_params, self.generator)
        return grads

    def meta_iteration(self) -> None:
        grads = self.meta_gradient()
        for name, value in self.meta_params.items():
            value.grad = grads[name]
        self.optimizer.step()


class HigherMAML:
    """higher's canonical MAML loop (its examples/maml-omniglot.py), one task at a time."""

    def __init__(self, net: nn.Module, episodes: Episodes, inner_steps: int):
        import higher

        self.higher, self.net, self.episodes, self.inner_steps = higher, net, episodes, inner_steps
        self.inner_optimizer = torch.optim.SGD(net.parameters(), lr=INNER_LR)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=OUTER_LR)

    def meta_gradient(self) -> dict[str, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        e, tasks = self.episodes, len(self.episodes.support_y)
        for i in range(tasks):
            inner_loop = self.higher.innerloop_ctx(self.net, self.inner_optimizer, copy_initial_weights=False)
            with inner_loop as (fnet, diffopt):
                for _ in range(self.inner_steps):
                    diffopt.step(F.cross_entropy(fnet(e.support_x[i]), e.support_y[i]))
                # / tasks: the meta-loss is the mean over tasks, as metaopt's
                (F.cross_entropy(fnet(e.query_x[i]), e.query_y[i]) / tasks).backward()
        return {name: value.grad for name, value in self.net.named_parameters()}

    def meta_iteration(self) -> None:
        self.meta_gradient()
        self.optimizer.step()


class TorchoptMAML:
    """torchopt's MAML idiom (its examples/few-shot/maml_omniglot.py): MetaSGD steps the module's
    own parameters, and the initial ones are restored after each task."""

    def __init__(self, net: nn.Module, episodes: Episodes, inner_steps: int):
        import torchopt

        self.torchopt, self.net, self.episodes, self.inner_steps = torchopt, net, episodes, inner_steps
        self.inner_optimizer = torchopt.MetaSGD(net, lr=INNER_LR)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=OUTER_LR)

    def meta_gradient(self) -> dict[str, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        e, tasks = self.episodes, len(self.episodes.support_y)
        net_state = self.torchopt.extract_state_dict(self.net)
        inner_state = self.torchopt.extract_state_dict(self.inner_optimizer)
        for i in range(tasks):
            for _ in range(self.inner_steps):
                self.inner_optimizer.step(F.cross_entropy(self.net(e.support_x[i]), e.support_y[i]))
            (F.cross_entropy(self.net(e.query_x[i]), e.query_y[i]) / tasks).backward()
            self.torchopt.recover_state_dict(self.net, net_state)
            self.torchopt.recover_state_dict(self.inner_optimizer, inner_state)
        return {name: value.grad for name, value in self.net.named_parameters()}

    def meta_iteration(self) -> None:
        self.meta_gradient()
        self.optimizer.step()


IMPLEMENTATIONS = {"metaopt": MetaoptMAML, "higher": HigherMAML, "torchopt": TorchoptMAML}


def installed(library: str) -> bool:
    return library == "metaopt" or importlib.util.find_spec(library) is not None


def build_all(libraries, args, image_size: int, device, dtype, seed: int) -> dict:
    """Every library's implementation, each on its own copy of one initial network and one episode batch."""
    torch.manual_seed(seed)
    net = make_backbone(args.backbone, image_size, args.norm).to(device=device, dtype=dtype)
    episodes = random_episodes(args.meta_batch, image_size, torch.Generator().manual_seed(seed), device, dtype)
    implementations = {**IMPLEMENTATIONS,
                       "metaopt": functools.partial(MetaoptMAML, batching=args.batching, compile=Compile(args.compile))}
    return {lib: implementations[lib](copy.deepcopy(net), episodes, args.inner_steps) for lib in libraries}


def check_agreement(libraries, args, device) -> dict[str, float]:
    """Each peer's meta-gradient against metaopt's, on the same initial weights and episodes, in
    float64 at a small image size. Agreement to round-off is expected; a relative difference
    above SAME_COMPUTATION means the timings would compare different computations (first order
    against second, a sum against a mean, another learning rate), and the run stops."""
    runs = build_all(libraries, args, CHECK_IMAGE_SIZE, device, torch.float64, seed=1)
    reference = runs["metaopt"].meta_gradient()
    scale = max(value.abs().max().item() for value in reference.values())
    differences = {}
    for lib in libraries[1:]:
        grads = runs[lib].meta_gradient()
        gaps = {name: (grads[name] - reference[name]).abs().max().item() for name in reference}
        differences[lib] = max(gaps.values())
        relative = differences[lib] / scale
        print(f"agreement with {lib} (float64, {CHECK_IMAGE_SIZE}x{CHECK_IMAGE_SIZE}): max abs difference "
              f"{differences[lib]:.3e}, relative to max |meta-gradient| {scale:.3e}: {relative:.3e}")
        if relative > ROUND_OFF:
            worst = sorted(gaps, key=gaps.get, reverse=True)[:3]
            print(f"warning: beyond float64 round-off; largest in {', '.join(worst)}")
        if relative > SAME_COMPUTATION:
            sys.exit(f"error: {lib}'s meta-gradient differs from metaopt's by {relative:.1e} of its scale: "
                     "the benchmark would compare different computations")
    if not differences:
        print("agreement: no peer installed to compare with")
    return differences


def timed(work, device) -> float:
    """Milliseconds of one call."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 1e3 * (time.perf_counter() - started)


def precision_cost(args, device) -> float:
    """The accuracy cost of --precision: ‖g − g_fp32‖ / ‖g_fp32‖ for metaopt's meta-gradient g
    under it, at the benchmark's shapes."""
    run = build_all(["metaopt"], args, args.image_size, device, torch.float32, seed=2)["metaopt"]
    with precision("fp32", device):
        reference = run.meta_gradient()
    with precision(args.precision, device):
        reduced = run.meta_gradient()
    flat = torch.cat([value.flatten() for value in reference.values()])
    error = torch.cat([(reduced[name].float() - reference[name]).flatten() for name in reference])
    return (error.norm() / flat.norm()).item()


def benchmark(libraries, args, device) -> tuple[dict, dict]:
    runs = build_all(libraries, args, args.image_size, device, torch.float32, seed=0)
    with precision(args.precision, device):
        for _ in range(args.warmup):
            for run in runs.values():
                run.meta_iteration()
        times = {lib: [] for lib in libraries}
        for _ in range(args.iterations):
            for lib, run in runs.items():
                times[lib].append(timed(run.meta_iteration, device))
        peaks = {lib: measure_peak(run.meta_iteration, device)[1] for lib, run in runs.items()}
    return times, peaks


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", choices=("conv4", "resnet12"), default="conv4")
    parser.add_argument("--norm", choices=NORM_KINDS, default="batch", help="the backbone's normalisation")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--iterations", type=int, default=10, help="timed meta-iterations per library")
    parser.add_argument("--warmup", type=int, default=2, help="untimed meta-iterations per library first")
    parser.add_argument("--meta-batch", type=int, default=4, help="tasks per meta-iteration")
    parser.add_argument("--inner-steps", type=int, default=5)
    parser.add_argument("--batching", choices=[b.value for b in Batching], default="auto",
                        help="metaopt's task.batching: auto (vmap on CUDA, the loop for conv backbones on a CPU), the meta-batch "
                             "under vmap, or task by task")
    parser.add_argument("--compile", choices=("none", "compile"), default="none",
                        help="metaopt's trainer.compile: its inner steps through torch.compile (the peers run eagerly)")
    parser.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32",
                        help="every library's arithmetic: float32, TF32 tensor cores (CUDA), or bfloat16 autocast")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    for name in ("iterations", "meta_batch", "inner_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    if args.image_size < 16:
        parser.error("--image-size must be at least 16 (four 2x poolings)")
    return args


def print_table(times: dict[str, list[float]], peaks: dict[str, int]) -> None:
    print(f"\n{'library':<10} {'ms/iter':>9} {'min-max ms':>12} {'iter/s':>7} {'peak MiB':>9} {'peer/metaopt':>13}")
    metaopt_ms = statistics.median(times["metaopt"])
    for lib in IMPLEMENTATIONS:
        if lib not in times:
            print(f"{lib:<10} {'skipped':>9}")
            continue
        ms = statistics.median(times[lib])
        spread = f"{min(times[lib]):.0f}-{max(times[lib]):.0f}"
        speedup = "" if lib == "metaopt" else f"{ms / metaopt_ms:.2f}x"
        print(f"{lib:<10} {ms:>9.1f} {spread:>12} {1e3 / ms:>7.2f} {peaks[lib] / 2**20:>9.1f} {speedup:>13}")


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    # auto, as task.batching=auto resolves it for this backbone on this device.
    args.batching = resolved_batching(Batching(args.batching), device,
                                      make_backbone(args.backbone, args.image_size, args.norm))
    libraries = [lib for lib in IMPLEMENTATIONS if installed(lib)]
    for lib in IMPLEMENTATIONS:
        if lib not in libraries:
            print(f"{lib}: not installed, skipped; install the peers with {INSTALL_PEERS}")
    print(f"{WAYS}-way {SHOTS}-shot, {QUERIES} queries per class, {args.backbone} ({args.norm} norm) on "
          f"{args.image_size}x{args.image_size}x3, meta-batch {args.meta_batch}, "
          f"{args.inner_steps} inner SGD steps (second order), {args.precision}, "
          f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    differences = check_agreement(libraries, args, device)
    cost = None
    if args.precision != "fp32":
        cost = precision_cost(args, device)
        print(f"accuracy cost of {args.precision}: metaopt's meta-gradient differs from float32's by {cost:.3e} "
              "of its norm")
    times, peaks = benchmark(libraries, args, device)
    ms = {lib: statistics.median(values) for lib, values in times.items()}

    result = {
        **{f"{lib}_ms": ms.get(lib) for lib in IMPLEMENTATIONS},
        **{f"speedup_vs_{lib}": ms[lib] / ms["metaopt"] if lib in ms else None for lib in PEERS},
        "device": args.device, "backbone": args.backbone, "norm": args.norm,
        "batching": args.batching,
        "precision": args.precision, "precision_rel_diff": cost, "compile": args.compile,
        "image_size": args.image_size,
        "meta_batch": args.meta_batch, "inner_steps": args.inner_steps, "iterations": args.iterations,
        **{f"{lib}_peak_bytes": peaks.get(lib) for lib in IMPLEMENTATIONS},
        **{f"{lib}_max_abs_diff": differences.get(lib) for lib in PEERS},
    }

    print_table(times, peaks)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
