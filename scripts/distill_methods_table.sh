#!/usr/bin/env bash
# Dataset distillation's three methods side by side on the embedded digits (MLP-128), at 1 and
# 10 images per class: distilled against random-real test accuracy, mean ± std over three
# distillation seeds (trainer.seed=0,1,2), as the distillation papers report. Each method at
# its paper's recipe scaled to digits:
#   unroll            Wang et al. 2018: the task's default (K = 20, tbptt), experiment=distill_digits_10ipc at 10;
#   gradient_match    DC (Zhao et al. 2021): outer_loop/inner_loop 1/1 at 1 image per class, 10/50 at 10
#                     (task.horizon/task.net_steps), lr_net 0.01;
#   trajectory_match  MTT (Cazenavette et al. 2022): K = 20 student steps matching M = 2 expert epochs,
#                     start epochs below 2 (1 per class) or 10 (10 per class), 5 experts × 20 epochs.
# About 25 minutes on a 2-core CPU. Usage: scripts/distill_methods_table.sh [output folder]
set -euo pipefail
out=${1:-outputs/distill_methods}
common=(logger=none trainer.progress=false)
seeds=trainer.seed=0,1,2

sweep() {  # sweep <name> <overrides…>: three distillation seeds into $out/<name>
  local name=$1
  shift
  metaopt train -m task=distill "$@" "$seeds" "${common[@]}" "hydra.sweep.dir=$out/$name"
}

metaopt experts data=digits backbone=mlp experts.count=5 experts.epochs=20 experts.batch_size=32 \
  "experts.dir=$out/experts" "${common[@]}" "hydra.run.dir=$out/experts_log"

sweep unroll_1ipc
sweep unroll_10ipc experiment=distill_digits_10ipc
gm=(task.method=gradient_match task.inner_lr=0.01)
sweep gradient_match_1ipc "${gm[@]}" task.horizon=1 task.net_steps=1 estimator=backprop trainer.meta_steps=200
sweep gradient_match_10ipc "${gm[@]}" task.images_per_class=10 task.horizon=10 task.net_steps=50 \
  estimator.truncation=1 estimator.online=true trainer.meta_steps=500
tm=(task.method=trajectory_match "task.experts=$out/experts" task.inner_lr=0.01 estimator=backprop trainer.meta_steps=500)
sweep trajectory_match_1ipc "${tm[@]}"
sweep trajectory_match_10ipc "${tm[@]}" task.images_per_class=10 task.max_start_epoch=10

metaopt compare "$out"/*ipc --spread std --metrics distilled_test_acc,random_real_test_acc --out "$out"
