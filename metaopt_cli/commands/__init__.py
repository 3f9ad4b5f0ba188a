"""One Hydra app per `metaopt` command."""
