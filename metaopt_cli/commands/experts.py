"""`metaopt experts [overrides]`: train the expert networks of trajectory matching on the chosen
data with the chosen backbone, and store their trajectories (tasks/distill/experts.py says how)."""
import logging
import time
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ..build import build, pick_device, run_dtype
from ..errors import reports_user_errors
from ..progress import showing_progress
from ..table import format_table
from ..tasks.distill.expert_training import accuracies, train_experts
from ..tasks.distill.experts import check_experts_config, choices_of, experts_folder, save_expert, save_manifest

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="pkg://metaopt_cli.conf", config_name="experts")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    choices = HydraConfig.get().runtime.choices
    check_experts_config(cfg, choices)
    options, trainer = cfg.experts, cfg.trainer
    folder = experts_folder(options, choices_of(HydraConfig.get()))
    device, dtype = pick_device(trainer.device), run_dtype(cfg)
    torch.set_default_dtype(dtype)  # the networks' parameters, as `metaopt train` builds them
    data = build(cfg.data).to(device, dtype)
    make_backbone = build(cfg.backbone, _partial_=True)
    make_net = lambda: make_backbone(in_shape=data.in_shape, num_outputs=data.num_classes)  # noqa: E731
    log.info(f"training {options.count} experts: {choices['backbone']} on {choices['data']}, {options.epochs} epochs "
             f"of SGD at lr {options.lr:g}, batches of {options.batch_size}, on {device}")
    started = time.perf_counter()
    with showing_progress(trainer.progress):
        trajectories, final = train_experts(make_net, data, options.count, options.epochs, options.lr,
                                            options.batch_size, torch.Generator(device).manual_seed(trainer.seed))
    seconds = time.perf_counter() - started
    scores = accuracies(make_net, final, data)
    for index in range(options.count):
        save_expert(folder, index, {name: value[index] for name, value in trajectories.items()})
    save_manifest(folder, {  # last: a folder with experts.json is complete
        "data": choices["data"], "backbone": choices["backbone"],
        "data_config": OmegaConf.to_container(cfg.data, resolve=True, enum_to_str=True),
        "backbone_config": OmegaConf.to_container(cfg.backbone, resolve=True, enum_to_str=True),
        "dataset": data.name, "image_shape": list(data.in_shape), "classes": data.num_classes,
        "lr": options.lr, "batch_size": options.batch_size, "epochs": options.epochs, "count": options.count,
        "seed": trainer.seed, "params": {name: list(value.shape[2:]) for name, value in trajectories.items()},
        **scores, "seconds": seconds,
    })
    rows = [[str(i), f"{scores['train_acc'][i]:.4f}", f"{scores['test_acc'][i]:.4f}"] for i in range(options.count)]
    log.info(format_table(["expert", "train acc", "test acc"], rows))
    log.info(f"{options.count} experts in {seconds:.1f} s, stored in {Path(folder).absolute()}")
