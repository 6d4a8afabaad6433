"""``TrainingEngine`` in a few lines, for in-process unit tests of the loop and the checkpointer."""

from __future__ import annotations

from pathlib import Path

import torch


class FakeEngine:
    """A linear model with Adam on the CPU; steps on every micro-batch (no accumulation), and saves and
    loads checkpoint folders the way DeepSpeed names them under ZeRO 0. ``steps`` counts optimizer steps."""

    def __init__(self, seed: int = 0, inputs: int = 4) -> None:
        torch.manual_seed(seed)
        self.module = torch.nn.Linear(inputs, 2)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=1e-2)
        self.device = torch.device("cpu")
        self.steps, self.grad_norm = 0, None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.float().mean(-1) if x.ndim == 3 else x)  # (B, leads, samples): one value a lead

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> None:
        """After ``backward``; alone (the checkpoint tests), on a random batch of its own."""
        if all(p.grad is None for p in self.module.parameters()):
            self.backward(self(torch.randn(8, self.module.in_features)).square().mean())
        self.grad_norm = float(torch.cat([p.grad.flatten() for p in self.module.parameters()]).norm())
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1

    def train(self, mode: bool = True):
        return self.module.train(mode)

    def eval(self):
        return self.module.eval()

    def get_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def get_global_grad_norm(self) -> float | None:
        return self.grad_norm

    def bfloat16_enabled(self) -> bool:
        return False

    def fp16_enabled(self) -> bool:
        return False

    def save_checkpoint(self, save_dir: str, tag: str, client_state: dict, save_latest: bool = True) -> None:
        (Path(save_dir) / tag).mkdir(parents=True, exist_ok=True)
        torch.save({"module": self.module.state_dict(), "optimizer": self.optimizer.state_dict(), **client_state},
                   Path(save_dir) / tag / "mp_rank_00_model_states.pt")

    def load_checkpoint(self, load_dir: str, tag: str) -> tuple[str | None, dict]:
        state = torch.load(Path(load_dir) / tag / "mp_rank_00_model_states.pt", weights_only=True)
        self.module.load_state_dict(state.pop("module"))
        self.optimizer.load_state_dict(state.pop("optimizer"))
        return str(Path(load_dir) / tag), state
