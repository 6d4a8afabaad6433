"""Where a run's scalars and figures go: TensorBoard always (``RUN/tb``), Weights & Biases as well
when ``logging.wandb_project`` names a project; only the main rank writes."""

from __future__ import annotations

from pathlib import Path

from ecgdist.config import LoggingSection
from ecgdist.tensorboard_log import NullLogger, TensorBoardLogger


class Loggers(NullLogger):
    """Every call to each of ``loggers``, in order."""

    def __init__(self, *loggers: NullLogger) -> None:
        self.loggers = loggers

    def log(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log(metrics, step)

    def figure(self, tag: str, figure, step: int) -> None:
        for logger in self.loggers:
            logger.figure(tag, figure, step)

    def hparams(self, hparams: dict, metrics: dict) -> None:
        for logger in self.loggers:
            logger.hparams(hparams, metrics)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def make_logger(run_dir: str | Path, enabled: bool, section: LoggingSection, name: str, config: dict,
                group: str | None = None, purge_step: int | None = None) -> NullLogger:
    """``name``, ``group``, ``config``: the W&B run's (a sweep's jobs share its group). ``purge_step``:
    TensorBoard hides what earlier writers logged at this step or later (a resumed run's)."""
    if not enabled:
        return NullLogger()
    tensorboard = TensorBoardLogger(Path(run_dir) / "tb", purge_step)
    if not section.wandb_project:
        return tensorboard
    from ecgdist.wandb_log import WandbLogger

    return Loggers(tensorboard, WandbLogger(section, run_dir, name, group, config))
