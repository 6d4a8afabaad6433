"""The checkpointer's rules, in-process against a fake engine: nothing good is ever deleted,
nothing corrupt is ever resumed from or silently restarted over, nothing non-finite is saved."""

import math

import pytest
import torch
from fake_engine import FakeEngine

from ecgdist.pretrain.checkpoint import FRESH_START, MARKER, SET_ASIDE, Checkpointer, CheckpointsCorrupt


def saved(folder, steps, keep_last=2):
    checkpointer, engine = Checkpointer(folder, keep_last=keep_last), FakeEngine()
    for step in steps:
        engine.step()
        checkpointer.save(engine, step, {"step": step})
    return checkpointer, engine


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def folders(folder):
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_every_checkpoint_corrupt_stops_naming_them_and_deletes_nothing(tmp_path):
    saved(tmp_path, [2, 4])
    for tag in ("step-00000002", "step-00000004"):
        flip_a_byte(tmp_path / tag / "rank-00000.pt")  # a few-kB RNG file is enough
    with pytest.raises(CheckpointsCorrupt, match="step-00000004 .*rank-00000.pt does not match.*fresh_start=true"):
        Checkpointer(tmp_path).plan_resume()
    assert folders(tmp_path) == [f"{SET_ASIDE}step-00000002", f"{SET_ASIDE}step-00000004"]  # kept, set aside
    # Asked for, a fresh start trains again; its saves and prunes never touch what was set aside.
    assert Checkpointer(tmp_path).plan_resume(fresh_start=True) is None
    saved(tmp_path, [2, 4, 6])
    assert folders(tmp_path) == [f"{SET_ASIDE}step-00000002", f"{SET_ASIDE}step-00000004", "step-00000004",
                                 "step-00000006"]


def test_a_fresh_start_file_serves_a_requeued_job_once(tmp_path):
    saved(tmp_path, [2])
    flip_a_byte(tmp_path / "step-00000002" / "mp_rank_00_model_states.pt")
    (tmp_path / FRESH_START).touch()
    assert Checkpointer(tmp_path).plan_resume() is None
    assert not (tmp_path / FRESH_START).exists()


def test_a_corrupt_newest_checkpoint_falls_back_and_is_set_aside_by_the_training_job_only(tmp_path):
    saved(tmp_path, [2, 4])
    (tmp_path / "step-00000004" / MARKER).write_text("{not json")
    assert Checkpointer(tmp_path).newest_usable() == "step-00000002"  # export/status: read only
    assert "step-00000004" in folders(tmp_path)
    resume = Checkpointer(tmp_path).plan_resume()
    assert resume.tag == "step-00000002" and folders(tmp_path) == [f"{SET_ASIDE}step-00000004", "step-00000002"]
    engine = FakeEngine(seed=1)
    step, client = Checkpointer(tmp_path).load(engine, resume)
    assert step == 2 and client["step"] == 2


def test_pruning_deletes_only_checkpoints_that_still_verify(tmp_path):
    checkpointer, engine = saved(tmp_path, [2, 4])
    flip_a_byte(tmp_path / "step-00000002" / "mp_rank_00_model_states.pt")
    engine.step()
    checkpointer.save(engine, 6, {"step": 6})  # step 2 is past keep_last, but does not verify: kept aside
    assert folders(tmp_path) == [f"{SET_ASIDE}step-00000002", "step-00000004", "step-00000006"]
    engine.step()
    checkpointer.save(engine, 8, {"step": 8})  # step 4 verifies: deleted
    assert folders(tmp_path) == [f"{SET_ASIDE}step-00000002", "step-00000006", "step-00000008"]


@pytest.mark.parametrize("spoil", ["model", "optimizer"])
def test_no_checkpoint_is_written_from_a_non_finite_model_or_optimizer(tmp_path, spoil):
    checkpointer, engine = saved(tmp_path, [2])
    with torch.no_grad():
        if spoil == "model":
            engine.module.weight[0, 0] = math.inf
        else:
            next(iter(engine.optimizer.state.values()))["exp_avg_sq"][0] = math.nan
    with pytest.raises(FloatingPointError, match="not saving step 4: the model or optimizer holds non-finite"):
        checkpointer.save(engine, 4, {"step": 4})
    assert folders(tmp_path) == ["step-00000002"] and (tmp_path / "latest").read_text() == "step-00000002"


def test_a_checkpoint_without_its_marker_is_a_save_that_did_not_finish_and_is_passed_over(tmp_path, caplog):
    saved(tmp_path, [2, 4])
    (tmp_path / "step-00000004" / MARKER).unlink()  # as if the save was killed before rank 0 wrote it
    resume = Checkpointer(tmp_path).plan_resume()
    assert resume.tag == "step-00000002"
    assert "ignoring step-00000004: no complete.json" in caplog.text
    assert "step-00000004" in folders(tmp_path)  # not corrupt, not set aside: the next save of step 4 replaces it


def test_a_corrupt_newest_checkpoint_is_said_in_the_log(tmp_path, caplog):
    saved(tmp_path, [2, 4])
    flip_a_byte(tmp_path / "step-00000004" / "mp_rank_00_model_states.pt")
    assert Checkpointer(tmp_path).plan_resume().tag == "step-00000002"
    assert "checkpoint step-00000004 is corrupt" in caplog.text and "falling back to the one before" in caplog.text


def test_a_folder_left_by_a_crashed_save_is_cleared_before_saving_into_it(tmp_path):
    crashed = tmp_path / "step-00000002"
    crashed.mkdir()
    (crashed / "mp_rank_00_model_states.pt").write_bytes(b"half a save")
    (crashed / "stray-from-another-layout.pt").write_bytes(b"x")
    saved(tmp_path, [2])
    assert not (crashed / "stray-from-another-layout.pt").exists()
    assert (crashed / MARKER).exists() and Checkpointer(tmp_path).problem("step-00000002") is None


def saved_with_probes(folder, values, keep_last=2, metric="probe/ptbxl/superdiagnostic/auroc"):
    """One checkpoint per (step, probe value), the checkpointer keeping the best by that value."""
    checkpointer, engine = Checkpointer(folder, keep_last=keep_last, keep_best=metric), FakeEngine()
    for step, value in values:
        engine.step()
        checkpointer.save(engine, step, {"step": step}, {metric: value})
    return checkpointer


def test_keep_best_keeps_the_best_probe_step_beside_the_newest_ones_until_it_is_beaten(tmp_path):
    checkpointer = saved_with_probes(tmp_path, [(2, 0.61), (4, 0.74), (6, 0.70), (8, 0.69)])
    assert folders(tmp_path) == ["step-00000004", "step-00000006", "step-00000008"]
    assert checkpointer.best() == ("step-00000004", 0.74)
    assert checkpointer.marker("step-00000006")["probe"] == {"probe/ptbxl/superdiagnostic/auroc": 0.70}
    engine = FakeEngine()
    engine.step()
    checkpointer.save(engine, 10, {"step": 10}, {"probe/ptbxl/superdiagnostic/auroc": 0.80})
    # Beaten at step 10: step 4 is an old checkpoint like any other and goes.
    assert folders(tmp_path) == ["step-00000008", "step-00000010"]
    assert checkpointer.best() == ("step-00000010", 0.80)


def test_the_best_is_the_earliest_on_a_tie_and_never_a_nan_or_a_missing_value(tmp_path):
    checkpointer = saved_with_probes(tmp_path, [(2, math.nan), (4, 0.7), (6, 0.7)], keep_last=5)
    engine = FakeEngine()
    engine.step()
    checkpointer.save(engine, 8, {"step": 8})  # no probe at this step
    assert checkpointer.best() == ("step-00000004", 0.7)
    assert Checkpointer(tmp_path).best("probe/ptbxl/rhythm/auroc") is None  # a metric no checkpoint has


def test_a_corrupt_best_checkpoint_gives_way_to_the_next_best_and_says_so(tmp_path, caplog):
    checkpointer = saved_with_probes(tmp_path, [(2, 0.6), (4, 0.9), (6, 0.5)], keep_last=5)
    flip_a_byte(tmp_path / "step-00000004" / "mp_rank_00_model_states.pt")
    assert checkpointer.best() == ("step-00000002", 0.6)
    assert "the best checkpoint by probe/ptbxl/superdiagnostic/auroc, step-00000004, is corrupt" in caplog.text
