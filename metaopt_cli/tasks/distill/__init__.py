"""Dataset distillation."""
