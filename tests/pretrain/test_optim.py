"""The pre-training learning-rate schedule and the fine-tune optimizer groups."""

import os

import numpy as np
import pytest
import torch
from conftest import REPO

from ecgdist.models.param_groups import param_groups
from ecgdist.pretrain.optim import build_adamw, warmup_cosine


def learning_rates(steps: int, warmup: int, total: int, peak: float = 1e-3) -> list[float]:
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    model = torch.nn.Linear(3, 2)
    optimizer = build_adamw(param_groups(model, peak, 0.05), peak)
    scheduler = warmup_cosine(optimizer, total, warmup, 0.01)
    rates = []
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def test_warm_up_is_linear_then_cosine_decays_to_the_floor():
    rates = learning_rates(steps=100, warmup=10, total=100)
    warm = np.array(rates[:10])  # the scheduler's iterations 0..9
    assert np.allclose(warm, 1e-3 * np.arange(10) / 10)  # DeepSpeed's default would be logarithmic
    assert max(rates) == pytest.approx(1e-3, rel=1e-3)
    assert all(b <= a for a, b in zip(rates[10:], rates[11:]))
    assert rates[-1] == pytest.approx(1e-5, rel=0.05)  # lr_min_ratio 0.01 of the peak


def test_decay_all_puts_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    by_default = {n: g["weight_decay"] for g in param_groups(model, 1e-3, 0.1) for n in g["names"]}
    everything = {n: g["weight_decay"] for g in param_groups(model, 1e-3, 0.1, decay_all=True) for n in g["names"]}
    assert by_default == {"0.weight": 0.1, "0.bias": 0.0, "1.weight": 0.0, "1.bias": 0.0}
    assert set(everything.values()) == {0.1}


def test_mae_rule_scales_the_peak_rate_with_the_global_batch():
    from ecgdist.config import PretrainConfig, load_config
    from ecgdist.pretrain.optim import peak_lr

    shipped = load_config(PretrainConfig, REPO / "configs/pretrain/mtecg_t.yaml").train
    assert shipped.lr_base == 1.5e-4
    assert peak_lr(shipped, 256 * 8) == pytest.approx(1.2e-3)  # 8 GPUs x micro batch 256
    assert peak_lr(shipped, 256) == pytest.approx(1.5e-4)
    tiny = load_config(PretrainConfig, REPO / "configs/pretrain/mtecg_tiny.yaml").train
    assert tiny.lr_base == 0 and peak_lr(tiny, 4096) == tiny.lr_peak  # an absolute rate stays as given
