"""metaopt's Hydra configs, installed as the package `metaopt_cli.conf`."""
