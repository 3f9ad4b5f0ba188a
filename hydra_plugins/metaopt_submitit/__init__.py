"""metaopt's submitit launchers (conf/hydra/launcher/{local,slurm}.yaml), here because Hydra
instantiates launchers only from the `hydra_plugins` package. They live in `_launchers`, which
Hydra's plugin scan skips (a machine without the `slurm` extra never imports the submitit
plugin); metaopt registers them itself (sweep.prepare_launcher), since the scan would also
miss them in an editable install."""
