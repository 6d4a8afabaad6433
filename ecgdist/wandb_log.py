"""The same scalars and figures to a Weights & Biases run, for groups that track experiments there.

One W&B run per ecgdist run folder: its id is kept in the folder (``wandb_id.txt``), so a
resumed or requeued job continues the run it started rather than opening another. Offline
(``logging.wandb_mode=offline``, the mode for compute nodes without internet) the run is
written under ``RUN/wandb/`` and uploaded later with ``wandb sync RUN/wandb/offline-run-*``.
A resumed job logs the steps after its checkpoint again; W&B keeps the first value it got for
a step (a crashed attempt's, which a deterministic resume repeats), where TensorBoard's
``purge_step`` keeps the last. stdout and stderr are left alone (``console="off"``): the job's
own log files stay what they are.
"""

from __future__ import annotations

from pathlib import Path

from ecgdist.config import LoggingSection
from ecgdist.files import atomic_write_text
from ecgdist.tensorboard_log import NullLogger

RUN_ID_FILE = "wandb_id.txt"


class WandbLogger(NullLogger):
    def __init__(self, section: LoggingSection, run_dir: str | Path, name: str, group: str | None,
                 config: dict) -> None:
        import wandb

        id_file = Path(run_dir) / RUN_ID_FILE
        self.wandb = wandb
        self.run = wandb.init(project=section.wandb_project, entity=section.wandb_entity or None,
                              mode=section.wandb_mode or None, dir=str(run_dir),
                              id=id_file.read_text().strip() if id_file.exists() else None, name=name, group=group,
                              config=config, resume="allow", settings=wandb.Settings(console="off"))
        if not id_file.exists():  # the run's first attempt: the id W&B gave it is the one later attempts continue
            atomic_write_text(id_file, self.run.id + "\n")

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def figure(self, tag: str, figure, step: int) -> None:
        self.run.log({tag: self.wandb.Image(figure)}, step=step)

    def hparams(self, hparams: dict, metrics: dict) -> None:
        self.run.config.update(hparams, allow_val_change=True)
        self.run.summary.update(metrics)

    def close(self) -> None:
        self.run.finish()
