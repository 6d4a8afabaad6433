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

pytestmark = pytest.mark.deepspeed
FOUR_STEPS = ("train.steps=4", "train.log_every_steps=1", "train.val_batches=0", "checkpoint.save_every_steps=2",
              "checkpoint.keep_last=2")


def train(corpus, run_dir, config, *overrides) -> list[float]:
    """A one-rank run; the loss it logged at each step."""
    done = forked.run(pretrain_args(corpus, run_dir, *FOUR_STEPS, *overrides, config=config), env=ONE_THREAD,
                      cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return [value for _, value in read_scalars(run_dir / "tb")["train/loss"]]


def resumed_from_step_2(saved_run, run_dir, corpus, config, *overrides) -> list[float]:
    """``saved_run``'s step-2 checkpoint resumed in a new run folder; the losses of steps 3 and 4."""
    shutil.copytree(saved_run / "checkpoints", run_dir / "checkpoints")
    shutil.rmtree(run_dir / "checkpoints/step-00000004")
    return train(corpus, run_dir, config, *overrides)


def final_weights(run_dir, out) -> dict[str, torch.Tensor]:
    return export(run_dir, out)["state_dict"]


def test_net1d_compiled_by_inductor_trains_as_eager_and_checkpoints_cross_over(ptbxl_corpus, tmp_path):
    config, compiled = "configs/pretrain/ecgfounder_tiny.yaml", ("train.compile=true", "train.compile_mode=default")
    eager_losses = train(ptbxl_corpus, tmp_path / "eager", config)
    compiled_losses = train(ptbxl_corpus, tmp_path / "compiled", config, *compiled)
    assert len(eager_losses) == 4
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-3)
    assert "compile: true" in (tmp_path / "compiled/config.yaml").read_text()
    # Saved compiled, resumed eager; saved eager, resumed compiled: both go on as the eager run did.
    to_eager = resumed_from_step_2(tmp_path / "compiled", tmp_path / "to_eager", ptbxl_corpus, config)
    to_compiled = resumed_from_step_2(tmp_path / "eager", tmp_path / "to_compiled", ptbxl_corpus, config, *compiled)
    assert to_eager == pytest.approx(eager_losses[2:], rel=1e-3)
    assert to_compiled == pytest.approx(eager_losses[2:], rel=1e-3)
    reference = final_weights(tmp_path / "eager", tmp_path / "eager.pth")
    for run in ("compiled", "to_eager", "to_compiled"):
        weights = final_weights(tmp_path / run, tmp_path / f"{run}.pth")
        assert weights.keys() == reference.keys()  # no "_orig_mod." prefix: the module was compiled in place
        assert max((weights[k] - reference[k]).abs().max().item() for k in reference) < 1e-3, run


def test_mtecg_autoencoder_compiles_through_its_masking(ptbxl_corpus, tmp_path):
    config = "configs/pretrain/mtecg_tiny.yaml"
    eager_losses = train(ptbxl_corpus, tmp_path / "eager", config)
    compiled_losses = train(ptbxl_corpus, tmp_path / "compiled", config, "train.compile=true",
                            "train.compile_backend=aot_eager")
    assert len(eager_losses) == 4 and compiled_losses == pytest.approx(eager_losses, rel=1e-5)
