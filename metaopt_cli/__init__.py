"""metaopt: a command-line experiment runner for large-scale meta-optimization in PyTorch."""
import logging

# Where nothing configures logging (the Python API, hydra/job_logging=none), metaopt's records go
# nowhere rather than to logging's last resort on stderr, which would print an `error:` line twice.
logging.getLogger(__name__).addHandler(logging.NullHandler())
