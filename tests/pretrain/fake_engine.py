"""The part of DeepSpeed's engine the checkpointer uses, in a few lines, for in-process unit tests."""

from __future__ import annotations

from pathlib import Path

import torch


class FakeEngine:
    """A linear model with Adam; saves and loads checkpoint folders the way DeepSpeed names them under ZeRO 0."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.module = torch.nn.Linear(4, 2)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=1e-2)

    def step(self) -> None:
        self.optimizer.zero_grad()
        self.module(torch.randn(8, 4)).square().mean().backward()
        self.optimizer.step()

    def save_checkpoint(self, folder: str, tag: str, client_state: dict, save_latest: bool = True) -> None:
        (Path(folder) / tag).mkdir(parents=True, exist_ok=True)
        torch.save({"module": self.module.state_dict(), "optimizer": self.optimizer.state_dict(), **client_state},
                   Path(folder) / tag / "mp_rank_00_model_states.pt")

    def load_checkpoint(self, folder: str, tag: str) -> tuple[str | None, dict]:
        state = torch.load(Path(folder) / tag / "mp_rank_00_model_states.pt", weights_only=True)
        self.module.load_state_dict(state.pop("module"))
        self.optimizer.load_state_dict(state.pop("optimizer"))
        return str(Path(folder) / tag), state
