"""Where results go: metrics.jsonl always, a W&B run when logger=wandb."""
