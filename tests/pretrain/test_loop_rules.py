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
from ecgdist.tensorboard_log import NullLogger


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


class Scalars(NullLogger):
    """Stands in for the TensorBoard logger: what was logged, by tag."""

    def __init__(self) -> None:
        self.logged: dict[str, list[tuple[int, float]]] = {}

    def log(self, metrics: dict, step: int) -> None:
        for tag, value in metrics.items():
            self.logged.setdefault(tag, []).append((step, value))


def loop(corpus, folder, steps, engine=None, objective=squared_output, preemption=None, train=None, logger=None,
         **saving) -> TrainLoop:
    data = ShardDataset(corpus, transform=Transform(crop_samples=500), device_transform=True)
    stream = EpochStream(data, BlockBatchSampler(data.shards_of(), 8, seed=0, drop_last=True))
    train = TrainSection(**{"steps": steps, "micro_batch": 8, "warmup_steps": 1, "val_every_steps": 1000,
                            "log_every_steps": 1000, "agree_every_steps": 1, **(train or {})})
    return TrainLoop(engine or FakeEngine(inputs=12), stream, data, objective, train, BatchLayout(8, 1, 1),
                     Checkpointer(folder, **saving), preemption=preemption, logger=logger or Scalars(),
                     client_state=lambda: {"run": "unit"})


def saved_steps(folder):
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("step-*") if (p / checkpoint_module.MARKER).exists())


def test_saves_fall_due_every_n_steps_and_at_the_last_step(ptbxl_corpus, tmp_path):
    assert loop(ptbxl_corpus, tmp_path, 7, save_every_steps=3, keep_last=5).run(0) == (7, "done")
    assert saved_steps(tmp_path) == [3, 6, 7]


@pytest.mark.parametrize("agree_every, saved", [(2, [2, 4, 5]), (3, [3, 5])])
def test_saves_fall_due_by_the_minutes_clock_at_the_next_agreement(ptbxl_corpus, tmp_path, monkeypatch, agree_every,
                                                                   saved):
    """40 s a step, a save due every minute: the ranks learn it at their next agreement (or the end)."""
    clock = [0.0]
    monkeypatch.setattr(checkpoint_module.time, "monotonic", lambda: clock[0])
    engine = FakeEngine(inputs=12)
    real_step = engine.step

    def step_of_40_seconds():
        real_step()
        clock[0] += 40
    engine.step = step_of_40_seconds
    loop(ptbxl_corpus, tmp_path, 5, engine, train={"agree_every_steps": agree_every}, save_every_minutes=1.0,
         keep_last=5).run(0)
    assert saved_steps(tmp_path) == saved


@pytest.mark.parametrize("loss_sync", ["step", "micro_step"])
def test_a_non_finite_loss_stops_before_the_optimizer_steps_and_saves_nothing_from_it(ptbxl_corpus, tmp_path,
                                                                                       loss_sync):
    calls = []

    def nan_at_third(engine, batch):
        calls.append(1)
        loss = squared_output(engine, batch)
        return loss * float("nan") if len(calls) == 3 else loss
    run = loop(ptbxl_corpus, tmp_path, 6, objective=nan_at_third, train={"loss_sync": loss_sync},
               save_every_steps=1, keep_last=5)
    with pytest.raises(FloatingPointError, match="loss is nan at step 3: stopping before the optimizer step"):
        run.run(0)
    assert run.engine.steps == 2 and saved_steps(tmp_path) == [1, 2]


@pytest.mark.parametrize("requeue, outcome", [(True, "requeue"), (False, "stopped")])
@pytest.mark.parametrize("agree_every, stop", [(1, 4), (3, 6)])
def test_a_signal_saves_at_the_next_agreement_then_ends_with_its_outcome(ptbxl_corpus, tmp_path, requeue, outcome,
                                                                         agree_every, stop):
    """Signalled during step 4: the ranks learn it at their next agreement, at most ``agree_every`` steps on."""
    engine = FakeEngine(inputs=12)
    run = loop(ptbxl_corpus, tmp_path, 50, engine, preemption=Signal(engine, 4, requeue),
               train={"agree_every_steps": agree_every})
    assert run.run(0) == (stop, outcome)
    assert saved_steps(tmp_path) == [stop]


def test_both_sync_paths_log_the_mean_loss_of_each_interval(ptbxl_corpus, tmp_path):
    """Losses summed on the device and read at log steps give what reading each one on the host gives."""
    losses = []

    def recorded(engine, batch):
        loss = squared_output(engine, batch)
        losses.append(loss.item())
        return loss
    logged = {}
    for loss_sync in ("step", "micro_step"):
        losses.clear()
        logger = Scalars()
        loop(ptbxl_corpus, tmp_path / loss_sync, 7, objective=recorded, logger=logger, save_every_steps=0,
             train={"loss_sync": loss_sync, "log_every_steps": 3, "agree_every_steps": 4}).run(0)
        steps, values = zip(*logger.logged["train/loss"])
        assert steps == (3, 6, 7)
        assert values == pytest.approx([sum(losses[:3]) / 3, sum(losses[3:6]) / 3, losses[6]], rel=1e-5)
        logged[loss_sync] = values
    assert logged["step"] == pytest.approx(logged["micro_step"])


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
