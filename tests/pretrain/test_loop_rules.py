"""The training loop's rules, in-process against the fake engine on real ptbxl-mini batches:
when it saves (by steps, by minutes, at the end), how it stops (a non-finite loss, a signal
with or without a requeue), what the command's exit code is then, that a resumed run
ends where a straight one does, and when it probes (its history and TensorBoard curve
unbroken by a crash, its best checkpoint kept)."""

import pytest
import torch
from fake_engine import FakeEngine

import ecgdist.pretrain.checkpoint as checkpoint_module
from ecgdist.config import PretrainConfig, TrainSection, from_dict
from ecgdist.data.dataset import ShardDataset
from ecgdist.data.loader import EpochStream
from ecgdist.data.sampler import BlockBatchSampler
from ecgdist.data.transforms import Transform
from ecgdist.pretrain import main as pretrain_main
from ecgdist.pretrain.checkpoint import Checkpointer
from ecgdist.pretrain.deepspeed_config import BatchLayout
from ecgdist.pretrain.engine import TrainLoop
from ecgdist.pretrain.probe import HISTORY_FILE, Probes, open_probe_sets, rank_batches, read_history
from ecgdist.tensorboard_log import NullLogger, TensorBoardLogger, read_scalars

AUROC = "probe/ptbxl/superdiagnostic/auroc"


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
         probes=None, **saving) -> TrainLoop:
    data = ShardDataset(corpus, transform=Transform(crop_samples=500), device_transform=True)
    stream = EpochStream(data, BlockBatchSampler(data.shards_of(), 8, seed=0, drop_last=True))
    train = TrainSection(**{"steps": steps, "micro_batch": 8, "warmup_steps": 1, "val_every_steps": 1000,
                            "log_every_steps": 1000, "agree_every_steps": 1, **(train or {})})
    return TrainLoop(engine or FakeEngine(inputs=12), stream, data, objective, train, BatchLayout(8, 1, 1),
                     Checkpointer(folder, **saving), preemption=preemption, logger=logger or Scalars(),
                     client_state=lambda: {"run": "unit"}, probes=probes)


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
    resumed.restore(client)
    assert (step, client["run"]) == (3, "unit")
    assert resumed.run(step) == (6, "done")
    for a, b in zip(straight.engine.module.parameters(), resumed_engine.module.parameters()):
        assert torch.equal(a, b)


def fake_features(module, signal):
    """The fake engine's two outputs as the probe's features."""
    return module(signal.float().mean(-1))


def probes(corpus, run_dir, steps, logger, every=2):
    cfg = from_dict(PretrainConfig, {"data": {"corpus": str(corpus), "crop_samples": 500}, "probe": {
        "benchmarks": [{"name": "ptbxl", "kind": "ptbxl", "tasks": ["superdiagnostic"]}], "every_steps": every}})
    made = Probes(open_probe_sets(cfg), cfg.probe, run_dir, steps, logger=logger, features=fake_features)
    made.restore([])  # a fresh start, as TrainLoop.restore makes it
    return made


def probed_steps(run_dir):
    return [entry["step"] for entry in read_history(run_dir / HISTORY_FILE)]


@pytest.mark.parametrize("records, batch, world_size", [(21, 4, 2), (20, 4, 3), (2, 4, 3), (9, 16, 2)])
def test_each_rank_probes_its_own_contiguous_part_in_as_many_batches_as_the_others(records, batch, world_size):
    """ZeRO-3's forwards are collective: every rank runs the same number of batches, the extra
    ones repeats its rank drops; the parts, gathered in rank order, are every record once, in order."""
    planned = [rank_batches(records, batch, rank, world_size) for rank in range(world_size)]
    assert len({len(batches) for batches, _ in planned}) == 1
    assert all(len(b) <= batch for batches, _ in planned for b in batches)
    assert [i for batches, own in planned for b in batches[:own] for i in b] == list(range(records))


def test_probes_run_every_interval_and_at_the_end_and_are_logged_once_each(ptbxl_corpus, tmp_path):
    logger = Scalars()
    run = loop(ptbxl_corpus, tmp_path / "checkpoints", 7, logger=logger,
               probes=probes(ptbxl_corpus, tmp_path, 7, logger))
    run.run(0)
    history = read_history(tmp_path / HISTORY_FILE)
    assert [entry["step"] for entry in history] == [2, 4, 6, 7]
    assert [step for step, _ in logger.logged[AUROC]] == [2, 4, 6, 7]
    assert [value for _, value in logger.logged[AUROC]] == [entry["values"][AUROC] for entry in history]
    assert all(0 <= entry["values"][AUROC] <= 1 and 0 < entry["share"] <= 1 for entry in history)
    assert sorted(history[0]["values"]) == [AUROC.replace("auroc", "auprc"), AUROC]


def test_a_probe_in_the_restored_history_is_not_run_again(ptbxl_corpus, tmp_path):
    made = probes(ptbxl_corpus, tmp_path, 6, Scalars())
    made.restore([{"step": 4, "values": {AUROC: 0.7}, "seconds": 1.0, "share": 0.1}])
    assert [step for step in range(1, 7) if made.due(step)] == [2, 6]
    assert probed_steps(tmp_path) == [4]  # probe.jsonl rewritten to the restored history


def test_a_run_that_crashed_after_a_checkpoint_resumes_one_unbroken_probe_curve(ptbxl_corpus, tmp_path):
    """Probes at 2, 4, 6, checkpoints at 3 and 6; the first attempt dies in step 5, after logging step 4's
    probe, which its checkpoint (step 3) does not hold: the resumed run rewrites probe.jsonl, TensorBoard
    hides the stale value (purge_step, as pretrain/main.py opens it), and the curve is a straight run's."""
    straight = tmp_path / "straight"
    loop(ptbxl_corpus, straight / "checkpoints", 6, probes=probes(ptbxl_corpus, straight, 6, Scalars()),
         save_every_steps=3).run(0)
    calls = []

    def dies_in_step_5(engine, batch):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("node lost")
        return squared_output(engine, batch)
    run_dir = tmp_path / "crashed"
    logger = TensorBoardLogger(run_dir / "tb")
    with pytest.raises(RuntimeError, match="node lost"):
        loop(ptbxl_corpus, run_dir / "checkpoints", 6, objective=dies_in_step_5, logger=logger,
             probes=probes(ptbxl_corpus, run_dir, 6, logger), save_every_steps=3).run(0)
    logger.close()
    assert probed_steps(run_dir) == [2, 4]

    engine = FakeEngine(seed=9, inputs=12)
    logger = TensorBoardLogger(run_dir / "tb", purge_step=4)
    resumed = loop(ptbxl_corpus, run_dir / "checkpoints", 6, engine, logger=logger,
                   probes=probes(ptbxl_corpus, run_dir, 6, logger), save_every_steps=3)
    step, client = resumed.checkpointer.load(engine, resumed.checkpointer.plan_resume())
    resumed.restore(client)
    assert step == 3 and probed_steps(run_dir) == [2]
    assert resumed.run(step) == (6, "done")
    logger.close()
    assert read_history(run_dir / HISTORY_FILE) == [
        {**entry, "seconds": later["seconds"], "share": later["share"]}
        for entry, later in zip(read_history(straight / HISTORY_FILE), read_history(run_dir / HISTORY_FILE))]
    curve = read_scalars(run_dir / "tb")[AUROC]
    assert curve == [(e["step"], pytest.approx(e["values"][AUROC])) for e in read_history(straight / HISTORY_FILE)]


def test_keep_best_saves_each_new_best_probe_at_once_and_keeps_it(ptbxl_corpus, tmp_path):
    logger = Scalars()
    run = loop(ptbxl_corpus, tmp_path / "checkpoints", 10, logger=logger,
               probes=probes(ptbxl_corpus, tmp_path, 10, logger, every=1), keep_best=AUROC)
    run.run(0)
    values = [(entry["step"], entry["values"][AUROC]) for entry in read_history(tmp_path / HISTORY_FILE)]
    new_bests = [step for k, (step, value) in enumerate(values) if all(value > v for _, v in values[:k])]
    # Saved: each new best (at once) and the last step; kept: the newest two (keep_last) and the best.
    assert len(new_bests) >= 2 and saved_steps(tmp_path / "checkpoints") == sorted(
        set(sorted({*new_bests, 10})[-2:]) | {new_bests[-1]})
    assert run.checkpointer.best() == (f"step-{new_bests[-1]:08d}", pytest.approx(dict(values)[new_bests[-1]]))
