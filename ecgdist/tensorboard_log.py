"""Scalars and figures to TensorBoard from rank 0 (other ranks get a logger that does nothing), and read back."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


class NullLogger:
    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def figure(self, tag: str, figure, step: int) -> None:
        pass

    def hparams(self, hparams: dict, metrics: dict) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardLogger(NullLogger):
    """``purge_step``: events of earlier writers at this step or later are hidden (a resumed run's
    steps after its checkpoint, which an attempt that crashed may have logged already)."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def figure(self, tag: str, figure, step: int) -> None:
        self.writer.add_figure(tag, figure, step)

    def hparams(self, hparams: dict, metrics: dict) -> None:
        self.writer.add_hparams(hparams, metrics, run_name="hparams")

    def close(self) -> None:
        self.writer.close()


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under ``log_dir``, as sorted (step, value), read with TensorBoard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list] = defaultdict(list)
    for events in sorted({p.parent for p in Path(log_dir).rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars[tag].extend((e.step, e.value) for e in acc.Scalars(tag))
    return {tag: sorted(values) for tag, values in scalars.items()}
