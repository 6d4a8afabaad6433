"""The DeepSpeed internals ecgdist relies on (ecgdist/pretrain/deepspeed_adapter.py), each by name:
a DeepSpeed release that changes one fails the test that says which."""

import subprocess

import pytest
import torch
import forked
from conftest import REPO
from launch import ONE_THREAD

from ecgdist.dist import free_port
from ecgdist.pretrain.deepspeed_adapter import (
    LATEST,
    MODEL_STATES,
    SHARED_MEMORY_OP,
    fp32_weights,
    keys_read,
    model_states,
    partitioned,
    state_types,
    universal_command,
)
from ecgdist.safe_load import load

pytestmark = pytest.mark.deepspeed

# One rank saves a small model under ZeRO 0, 2 and 3, as the checkpointer does (no ``latest``).
SAVE_EACH_STAGE = """
import sys, torch, torch.distributed as dist
from ecgdist.config import TrainSection
from ecgdist.pretrain.deepspeed_adapter import initialize
dist.init_process_group("gloo", rank=0, world_size=1)
for stage in (0, 2, 3):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    config = {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1, "train_batch_size": 2,
              "zero_optimization": {"stage": stage}, "bf16": {"enabled": False}}
    engine = initialize(model, torch.optim.AdamW(model.parameters(), lr=1e-2), None, config, TrainSection())
    loss = engine(torch.randn(2, 6)).square().mean()
    engine.backward(loss)
    engine.step()
    engine.save_checkpoint(f"{sys.argv[1]}/zero{stage}", tag="step-1", client_state={"step": 1}, save_latest=False)
    if stage == 0:
        torch.save(model.state_dict(), f"{sys.argv[1]}/zero0-weights.pt")
import deepspeed.comm.comm
open(f"{sys.argv[1]}/shared-memory-op.txt", "w").write(repr(deepspeed.comm.comm.cdb.shm_comm_op))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds")
    env = {**ONE_THREAD, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "RANK": "0", "WORLD_SIZE": "1",
           "LOCAL_RANK": "0", "DS_ACCELERATOR": "cpu"}
    done = forked.run(["-c", SAVE_EACH_STAGE, str(folder)], env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


@pytest.mark.parametrize("stage, states, split", [(0, MODEL_STATES[0], False), (2, MODEL_STATES[0], True),
                                                  (3, MODEL_STATES[1], True)])
def test_rank_0_model_states_file_and_the_optimizer_partitions_are_named_as_the_adapter_says(saved, stage, states,
                                                                                              split):
    tag = saved / f"zero{stage}" / "step-1"
    assert model_states(tag) == tag / states and (tag / states).exists()
    assert partitioned(tag) is split  # fp32 ZeRO 0 keeps its optimizer in the model-states file
    assert load(model_states(tag), known=state_types())["step"] == 1  # the client state is there
    assert not (saved / f"zero{stage}" / LATEST).exists()  # save_latest=False: ecgdist writes it after its marker


@pytest.mark.parametrize("stage", [0, 2, 3])
def test_every_checkpoint_file_reads_with_weights_only_given_the_adapters_state_types(saved, stage):
    files = sorted((saved / f"zero{stage}" / "step-1").glob("*.pt"))
    assert files
    for file in files:
        load(file, known=state_types())  # raises on a class the list lacks


def test_the_cpu_backend_skips_building_its_shared_memory_op_by_the_name_the_adapter_marks(saved):
    from deepspeed.accelerator import get_accelerator

    assert get_accelerator().create_op_builder("ShareMemCommBuilder").NAME == SHARED_MEMORY_OP
    assert (saved / "shared-memory-op.txt").read_text() == "None"  # the engines' backend built none


def test_the_fp32_converter_gathers_a_zero3_checkpoint_into_the_models_names_and_shapes(saved):
    weights = fp32_weights(saved / "zero3", "step-1")
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    assert {k: tuple(v.shape) for k, v in weights.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert all(v.dtype == torch.float32 for v in weights.values())


def test_the_config_reader_asks_for_each_key_it_reads_and_not_for_others():
    ds = {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1, "train_batch_size": 2,
          "zero_optimization": {"stage": 2}, "gradient_clipping": 1.0, "bf16": {"enabled": False},
          "zero_optimisation": {"stage": 2}}
    asked = keys_read(ds)
    assert {"train_micro_batch_size_per_gpu", "zero_optimization", "gradient_clipping", "bf16"} <= asked
    assert "zero_optimisation" not in asked  # what the misspelled-key check (test_deepspeed_config) rests on


def test_the_universal_conversion_script_takes_the_flags_the_adapter_passes(tmp_path):
    command = universal_command(tmp_path / "in", tmp_path / "out")
    flags = [part for part in command if part.startswith("--")]
    help_text = subprocess.run([*command[:3], "--help"], capture_output=True, text=True, env=ONE_THREAD).stdout
    assert command[2] == "deepspeed.checkpoint.ds_to_universal"
    assert flags and all(flag in help_text for flag in flags), help_text
