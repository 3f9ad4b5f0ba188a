"""Differentiable architecture search (DARTS and its estimators): task=nas."""
