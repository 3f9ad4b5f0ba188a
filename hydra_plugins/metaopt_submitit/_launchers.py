"""hydra-submitit-launcher's launchers, keeping each job's outcome for the sweep's closing
`error:` lines: a job runs in a process of its own, on this machine or a cluster's, so its
failure comes back as what it returned (sweep.JobFailed), here, where the sweep waits."""
from typing import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher import submitit_launcher

from metaopt_cli import sweep


class _KeepsOutcomes:
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        returns = super().launch(job_overrides, initial_job_idx)
        for job in returns:
            sweep.keep_outcome(job)
        return returns


class LocalLauncher(_KeepsOutcomes, submitit_launcher.LocalLauncher):
    pass


class SlurmLauncher(_KeepsOutcomes, submitit_launcher.SlurmLauncher):
    pass
