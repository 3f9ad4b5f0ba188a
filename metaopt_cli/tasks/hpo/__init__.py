"""Hyperparameter optimisation: learn the hyperparameters of a training run for its validation loss."""
