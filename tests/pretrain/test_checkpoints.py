"""Checkpoints with real DeepSpeed: the every-corrupt refusal end to end, export of ZeRO 0 and 2
files, the universal conversion's waiting ranks, and an export that would run pickled code."""

import os
import threading
import time

import pytest
import torch
from fake_engine import FakeEngine
from launch import export, pretrain

from ecgdist.pretrain.checkpoint import MARKER, Checkpointer, step_tag
from ecgdist.pretrain.deepspeed_adapter import state_types
from ecgdist.pretrain.universal_checkpoint import failure_marker, universal_tag, wait_for_conversion

pytestmark = pytest.mark.deepspeed


def corrupt(tag_dir):
    states = tag_dir / "mp_rank_00_model_states.pt"
    data = bytearray(states.read_bytes())
    data[len(data) // 2] ^= 0xFF
    states.write_bytes(bytes(data))


def test_when_every_checkpoint_is_corrupt_the_run_stops_until_asked_and_keeps_them(ptbxl_corpus, tmp_path):
    """The wiring end to end: the command's one-line refusal, then the fresh start it asks for (the
    rules themselves: test_checkpoint_rules.py, whose fake engine writes the checkpoints here)."""
    run = tmp_path / "run"
    checkpoints = run / "checkpoints"
    writer, engine = Checkpointer(checkpoints), FakeEngine()
    for step in (2, 4):
        engine.step()
        writer.save(engine, step, {"step": step})
        corrupt(checkpoints / step_tag(step))
    again = pretrain(ptbxl_corpus, run, "train.steps=2", "checkpoint.save_every_steps=2")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"error: every checkpoint under {checkpoints} is corrupt: step-00000004" in again.stderr
    fresh = pretrain(ptbxl_corpus, run, "train.steps=2", "checkpoint.save_every_steps=2", "checkpoint.fresh_start=true")
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == [
        "corrupt-step-00000002", "corrupt-step-00000004", "step-00000002"]
    assert (checkpoints / "latest").read_text() == "step-00000002"


def test_export_works_for_zero_stage_0_as_for_stage_2(ptbxl_corpus, tmp_path):
    exported = {}
    for stage in (0, 2):
        run = tmp_path / f"zero{stage}"
        done = pretrain(ptbxl_corpus, run, "train.steps=2", "checkpoint.save_every_steps=2",
                        f"deepspeed=configs/deepspeed/zero{stage}.json")
        assert done.returncode == 0, done.stderr[-2000:]
        exported[stage] = export(run, tmp_path / f"zero{stage}.pth")["state_dict"]
    assert exported[0].keys() == exported[2].keys()
    assert all(v.dtype == torch.float32 for k, v in exported[0].items() if v.is_floating_point())


def test_ranks_wait_for_the_universal_conversion_without_a_collective_timeout(tmp_path):
    tag_dir = tmp_path / "step-00000010"
    tag_dir.mkdir()
    out = tmp_path / universal_tag(tag_dir.name)
    threading.Timer(1.5, out.mkdir).start()  # rank 0 finishes later than a short poll
    assert wait_for_conversion(tag_dir, timeout_s=30, poll_s=0.1) == out


def test_a_failed_conversion_stops_the_waiting_ranks_with_its_reason_but_an_old_failure_does_not(tmp_path):
    tag_dir = tmp_path / "step-00000010"
    tag_dir.mkdir()
    failure_marker(tag_dir).write_text("converting failed: disk full")
    old = time.time() - 3600
    os.utime(failure_marker(tag_dir), (old, old))  # left by an earlier job
    with pytest.raises(TimeoutError):
        wait_for_conversion(tag_dir, timeout_s=0.5, poll_s=0.1)
    threading.Timer(0.5, lambda: failure_marker(tag_dir).write_text("converting failed: disk full")).start()
    with pytest.raises(RuntimeError, match="disk full"):
        wait_for_conversion(tag_dir, timeout_s=30, poll_s=0.1)


def test_export_refuses_a_checkpoint_file_that_would_run_code(ptbxl_corpus, tmp_path, capsys):
    """An export is how checkpoints cross between groups: a tampered file (its checksum in
    complete.json updated too) is refused by name, and its payload never runs."""
    import json

    from ecgdist.files import file_sha256
    from ecgdist import export
    from ecgdist.safe_load import load
    from test_safe_load import payloads

    run = tmp_path / "run"
    done = pretrain(ptbxl_corpus, run, "train.steps=2", "checkpoint.save_every_steps=2")
    assert done.returncode == 0, done.stderr[-2000:]
    tag = run / "checkpoints" / "step-00000002"
    marker = tmp_path / "payload-ran"

    def rehash(folder):
        complete = json.loads((folder / MARKER).read_text())
        complete["files"] = {k: file_sha256(folder / k) for k in complete["files"]}
        (folder / MARKER).write_text(json.dumps(complete))

    for name in ("mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt"):
        original = (tag / name).read_bytes()
        state = load(tag / name, known=state_types())
        torch.save({**state, "extra": payloads(marker)["builtins.exec"]}, tag / name)
        rehash(tag)
        assert export.main([str(run), str(tmp_path / "out.pth")]) == 2
        assert f"{name} holds a pickled object of type builtins.exec" in capsys.readouterr().err
        assert not marker.exists() and not (tmp_path / "out.pth").exists()
        (tag / name).write_bytes(original)
    rehash(tag)
    assert export.main([str(run), str(tmp_path / "out.pth")]) == 0  # the untouched files still export
