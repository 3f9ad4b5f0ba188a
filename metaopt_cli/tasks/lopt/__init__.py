"""Learned optimizers: an update rule, a small network, meta-trained to train other networks."""
