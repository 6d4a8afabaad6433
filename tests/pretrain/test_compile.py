"""``train.compile``: the model compiled inside the DeepSpeed engine trains as the eager one does,
and its checkpoints are the eager model's (either resumes the other's).

Net1D goes through inductor, the code generator GPUs use (on CPU it writes C++: the first
compile takes a minute or two here). The MTECG autoencoder goes through ``aot_eager``: graph
capture and autograd through its masking gathers, with eager kernels, so its random masks
are eager's and its losses must be equal."""

import shutil

import forked
import pytest
import torch
from launch import ONE_THREAD, REPO, export, pretrain_args, read_scalars

from ecgdist.pretrain.checkpoint import step_tag

pytestmark = pytest.mark.deepspeed
SHORT_RUN = ("train.log_every_steps=1", "train.val_batches=0", "checkpoint.save_every_steps=2",
             "checkpoint.keep_last=3")


def train(corpus, run_dir, config, *overrides, steps: int = 4) -> list[float]:
    """A one-rank run to ``steps`` (resuming the newest checkpoint ``run_dir`` holds); the loss it
    logged at each step."""
    done = forked.run(pretrain_args(corpus, run_dir, f"train.steps={steps}", *SHORT_RUN, *overrides, config=config),
                      env=ONE_THREAD, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return [value for _, value in read_scalars(run_dir / "tb")["train/loss"]]


def resumed(saved_run, step: int, run_dir, corpus, config, *overrides, steps: int) -> list[float]:
    """``saved_run``'s checkpoint of ``step`` resumed in a new run folder up to ``steps``; the losses
    of the steps after ``step``."""
    shutil.copytree(saved_run / "checkpoints", run_dir / "checkpoints")
    for later in (run_dir / "checkpoints").glob("step-*"):
        if later.name > step_tag(step):  # zero-padded: names sort as their steps do
            shutil.rmtree(later)
    return train(corpus, run_dir, config, *overrides, steps=steps)


def final_weights(run_dir, out) -> dict[str, torch.Tensor]:
    return export(run_dir, out)["state_dict"]


def test_net1d_compiled_by_inductor_trains_as_eager_and_checkpoints_cross_over(ptbxl_corpus, tmp_path):
    """One compiled run (inductor's first compile is most of this test's time): it resumes an eager
    run's step-2 checkpoint and trains steps 3-6 as eager did; an eager run resumes its step-4
    checkpoint and trains steps 5-6 as eager did."""
    config, compiled = "configs/pretrain/ecgfounder_tiny.yaml", ("train.compile=true", "train.compile_mode=default")
    eager_losses = train(ptbxl_corpus, tmp_path / "eager", config, steps=6)
    assert len(eager_losses) == 6
    # Saved eager, resumed compiled; saved compiled, resumed eager: both go on as the eager run did.
    compiled_losses = resumed(tmp_path / "eager", 2, tmp_path / "compiled", ptbxl_corpus, config, *compiled, steps=6)
    assert compiled_losses == pytest.approx(eager_losses[2:], rel=1e-3)
    assert "compile: true" in (tmp_path / "compiled/config.yaml").read_text()
    to_eager = resumed(tmp_path / "compiled", 4, tmp_path / "to_eager", ptbxl_corpus, config, steps=6)
    assert to_eager == pytest.approx(eager_losses[4:], rel=1e-3)
    reference = final_weights(tmp_path / "eager", tmp_path / "eager.pth")
    for run in ("compiled", "to_eager"):
        weights = final_weights(tmp_path / run, tmp_path / f"{run}.pth")
        assert weights.keys() == reference.keys()  # no "_orig_mod." prefix: the module was compiled in place
        assert max((weights[k] - reference[k]).abs().max().item() for k in reference) < 1e-3, run


def test_mtecg_autoencoder_compiles_through_its_masking(ptbxl_corpus, tmp_path):
    config = "configs/pretrain/mtecg_tiny.yaml"
    eager_losses = train(ptbxl_corpus, tmp_path / "eager", config)
    compiled_losses = train(ptbxl_corpus, tmp_path / "compiled", config, "train.compile=true",
                            "train.compile_backend=aot_eager")
    assert len(eager_losses) == 4 and compiled_losses == pytest.approx(eager_losses, rel=1e-5)
