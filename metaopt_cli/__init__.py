"""metaopt: a command-line experiment runner for large-scale meta-optimization in PyTorch."""
