"""`python -m metaopt_cli <command> …`, which torchrun starts once per rank (`torchrun … -m metaopt_cli train …`)."""
from .cli import main

main()
