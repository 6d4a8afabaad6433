"""The training loop's rules, in-process against the fake engine on real ptbxl-mini batches:
when it saves (by steps, by minutes, at the end), how it stops (a non-finite loss, a signal
with or without a requeue), what the command's exit code is then, and that a resumed run
ends where a straight one does."""

import pytest
import torch
from fake_engine import FakeEngine

import ecgdist.pretrain.checkpoint as checkpoint_module
from ecgdist.config import TrainSection
from ecgdist.data.dataset import ShardDataset
from ecgdist.data.loader import EpochStream
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.transforms import Transform
from ecgdist.pretrain import main as pretrain_main
from ecgdist.pretrain.checkpoint import Checkpointer
from ecgdist.pretrain.deepspeed_config import BatchLayout
from ecgdist.pretrain.engine import TrainLoop


def squared_output(engine, batch):
    return engine(batch["signal"]).square().mean()


class Signal:
    """Stands in for ``PreemptionFlag``: "signalled" once the engine has made ``after`` steps."""

    def __init__(self, engine: FakeEngine, after: int, requeue: bool) -> None:
        self.engine, self.after, self.requeue_asked = engine, after, requeue

    @property
    def requested(self) -> bool:
        return self.engine.steps >= self.after

    @property
    def requeue(self) -> bool:
        return self.requested and self.requeue_asked


def loop(corpus, folder, steps, engine=None, objective=squared_output, preemption=None, **saving) -> TrainLoop:
    data = ShardDataset(corpus, transform=Transform(crop_samples=500), device_transform=True)
    stream = EpochStream(data, BlockBatchSampler(data.shards_of(), 8, seed=0, drop_last=True))
    train = TrainSection(steps=steps, micro_batch=8, warmup_steps=1, val_every_steps=1000, log_every_steps=1000)
    return TrainLoop(engine or FakeEngine(inputs=12), stream, data, objective, train, BatchLayout(8, 1, 1),
                     Checkpointer(folder, **saving), preemption=preemption,
                     client_state=lambda: {"run": "unit"})


def saved_steps(folder):
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("step-*") if (p / checkpoint_module.MARKER).exists())


def test_saves_fall_due_every_n_steps_and_at_the_last_step(ptbxl_corpus, tmp_path):
    assert loop(ptbxl_corpus, tmp_path, 7, save_every_steps=3, keep_last=5).run(0) == (7, "done")
    assert saved_steps(tmp_path) == [3, 6, 7]


def test_saves_fall_due_by_the_minutes_clock(ptbxl_corpus, tmp_path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(checkpoint_module.time, "monotonic", lambda: clock[0])
    engine = FakeEngine(inputs=12)
    real_step = engine.step

    def step_of_40_seconds():
        real_step()
        clock[0] += 40
    engine.step = step_of_40_seconds
    loop(ptbxl_corpus, tmp_path, 5, engine, save_every_minutes=1.0, keep_last=5).run(0)
    assert saved_steps(tmp_path) == [2, 4, 5]  # 80 s after the start, 80 s after that save, and the end


def test_a_non_finite_loss_stops_before_the_optimizer_steps_and_saves_nothing_from_it(ptbxl_corpus, tmp_path):
    calls = []

    def nan_at_third(engine, batch):
        calls.append(1)
        loss = squared_output(engine, batch)
        return loss * float("nan") if len(calls) == 3 else loss
    run = loop(ptbxl_corpus, tmp_path, 6, objective=nan_at_third, save_every_steps=1, keep_last=5)
    with pytest.raises(FloatingPointError, match="loss is nan at step 3: stopping before the optimizer step"):
        run.run(0)
    assert run.engine.steps == 2 and saved_steps(tmp_path) == [1, 2]


@pytest.mark.parametrize("requeue, outcome", [(True, "requeue"), (False, "stopped")])
def test_a_signal_saves_at_the_next_step_boundary_then_ends_with_its_outcome(ptbxl_corpus, tmp_path, requeue, outcome):
    engine = FakeEngine(inputs=12)
    run = loop(ptbxl_corpus, tmp_path, 50, engine, preemption=Signal(engine, 4, requeue))
    assert run.run(0) == (4, outcome)
    assert saved_steps(tmp_path) == [4]


@pytest.mark.parametrize("outcome, in_slurm, code, requeued", [
    ("requeue", True, 0, True),  # SLURM's warning before the time limit: requeue, exit 0
    ("stopped", True, 0, False),  # scancel or preemption: SLURM decides, never requeued on top
    ("requeue", False, pretrain_main.EXIT_PREEMPTED, False),  # a signal outside SLURM: run again to resume
    ("done", True, 0, False),
])
def test_the_command_turns_each_outcome_into_its_exit_code(monkeypatch, outcome, in_slurm, code, requeued):
    calls = []
    monkeypatch.setattr(pretrain_main, "run", lambda cfg: {"step": 4, "outcome": outcome, "resumed_from": 0, "rank": 0})
    monkeypatch.setattr(pretrain_main, "requeue_slurm_job", lambda: calls.append("requeue") or True)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    if in_slurm:
        monkeypatch.setenv("SLURM_JOB_ID", "7")
    assert pretrain_main.main(["configs/pretrain/ecgfounder_tiny.yaml"]) == code
    assert calls == (["requeue"] if requeued else [])


def test_a_resumed_run_ends_with_the_weights_of_a_straight_one(ptbxl_corpus, tmp_path):
    straight = loop(ptbxl_corpus, tmp_path / "straight", 6)
    straight.run(0)
    interrupted = FakeEngine(inputs=12)
    loop(ptbxl_corpus, tmp_path / "resumed", 6, interrupted, preemption=Signal(interrupted, 3, True)).run(0)
    resumed_engine = FakeEngine(seed=9, inputs=12)  # other initial weights: all must come from the checkpoint
    resumed = loop(ptbxl_corpus, tmp_path / "resumed", 6, resumed_engine)
    step, client = resumed.checkpointer.load(resumed_engine, resumed.checkpointer.plan_resume())
    resumed.stream.load_state_dict(client["stream"])
    assert (step, client["run"]) == (3, "unit")
    assert resumed.run(step) == (6, "done")
    for a, b in zip(straight.engine.module.parameters(), resumed_engine.module.parameters()):
        assert torch.equal(a, b)
