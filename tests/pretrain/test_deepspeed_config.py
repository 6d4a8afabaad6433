"""The DeepSpeed JSON is read by DeepSpeed's own parser before any rank starts; what it would ignore is an error."""

import json

import pytest
from conftest import REPO
from launch import refused_pretrain

from ecgdist.config import ConfigError, TrainSection
from ecgdist.pretrain.deepspeed_config import build_ds_config

CASES = {
    "misspelled section": ({"zero_optimisation": {"stage": 2}}, "'zero_optimisation' (did you mean 'zero_optimization'?)"),
    "optimizer section": ({"optimizer": {"type": "Adam", "params": {"lr": 1}}}, "remove the 'optimizer' section"),
    "scheduler section": ({"scheduler": {"type": "WarmupLR"}}, "remove the 'scheduler' section"),
    "invalid stage": ({"zero_optimization": {"stage": 7}}, "DeepSpeed refuses it"),
    "misspelled nested key": ({"zero_optimization": {"stage": 2, "overlap_comms": True}}, "overlap_comms"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_json_deepspeed_would_ignore_or_refuse_is_an_error_naming_the_file(tmp_path, case):
    content, message = CASES[case]
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError) as error:
        build_ds_config(path, TrainSection(), world_size=2)
    assert str(path) in str(error.value) and message in str(error.value)


def test_invalid_json_names_the_file_and_the_place(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text('{"zero_optimization": {"stage": 2,}}')
    with pytest.raises(ConfigError, match=r"ds.json is not valid JSON \(line 1, column 35"):
        build_ds_config(path, TrainSection(), world_size=2)


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_the_bundled_configs_pass(stage):
    ds, layout = build_ds_config(REPO / f"configs/deepspeed/zero{stage}.json", TrainSection(micro_batch=8), 4)
    assert ds["train_batch_size"] == 32 == layout.global_batch


def test_the_job_stops_before_any_rank_trains(ptbxl_corpus, tmp_path, capsys):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"zero_optimisation": {"stage": 2}}))
    code, err = refused_pretrain(capsys, ptbxl_corpus, tmp_path / "run", f"deepspeed={path}")
    assert code == 2 and "zero_optimisation" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()
