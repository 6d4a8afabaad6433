"""Scalars and figures to TensorBoard from rank 0; other ranks get a logger that does nothing."""

from __future__ import annotations

from pathlib import Path


class NullLogger:
    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def figure(self, tag: str, figure, step: int) -> None:
        pass

    def text(self, tag: str, text: str, step: int = 0) -> None:
        pass

    def hparams(self, hparams: dict, metrics: dict) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardLogger(NullLogger):
    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def figure(self, tag: str, figure, step: int) -> None:
        self.writer.add_figure(tag, figure, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        self.writer.add_text(tag, text, step)

    def hparams(self, hparams: dict, metrics: dict) -> None:
        self.writer.add_hparams(hparams, metrics, run_name="hparams")

    def close(self) -> None:
        self.writer.close()


def make_logger(log_dir: str | Path, enabled: bool) -> NullLogger:
    return TensorBoardLogger(log_dir) if enabled else NullLogger()
