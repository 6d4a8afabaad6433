"""The prepared GPU call (bench/gpu.sh): a lent machine gets every package ecgdist needs
(bench/gpu-wheels.txt carries what its image lacks, bench/preflight.py names what is still
missing before any step runs), and a step stopped at its time limit keeps what it measured."""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata

import pytest

from packaging.requirements import Requirement

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import gpu  # noqa: E402
import preflight  # noqa: E402


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_list() -> tuple[set[str], dict[str, str]]:
    """(the names on the image, {carried name: pinned version})."""
    lines = (REPO / "bench" / "gpu-wheels.txt").read_text().splitlines()
    image = next(line for line in lines if line.startswith("# image:")).split(":", 1)[1].split()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {normalised(name) for name in image}, {normalised(name): version for name, version in pins}


def test_each_requirement_of_setup_cfg_is_on_the_image_or_carried_at_a_version_it_allows():
    image, pins = wheel_list()
    assert not image & pins.keys(), "carried wheels would shadow the image's own"
    for requirement in map(Requirement, preflight.requirements()):
        name = normalised(requirement.name)
        if name not in image:
            assert name in pins, f"{requirement} is neither on the GPU image nor in bench/gpu-wheels.txt"
            assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement}"


def test_what_the_carried_packages_need_is_carried_or_on_the_image():
    image, pins = wheel_list()
    for carried in pins:
        for line in metadata.requires(carried) or []:  # as installed here
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                assert normalised(requirement.name) in image | pins.keys(), f"{carried} needs {requirement}"


def test_preflight_names_each_requirement_missing_or_out_of_range_and_passes_this_environment():
    numpy = metadata.version("numpy")
    assert preflight.unmet(["no-such-package-ecgdist>=1", "numpy<1", f"numpy=={numpy}"]) == [
        "no-such-package-ecgdist>=1 (not installed)", f"numpy<1 (found {numpy})"]
    assert preflight.unmet(preflight.requirements()) == []
    assert "deepspeed<0.20,>=0.19" in [str(Requirement(line)) for line in preflight.requirements()]


def test_a_step_stopped_at_its_limit_keeps_the_figures_it_printed_and_its_log(tmp_path):
    printing = "import json, time; print(json.dumps({'eager': 1.5})); print('compiling', flush=True); time.sleep(60)"
    with pytest.raises(gpu.Failed) as stopped:
        gpu.run([sys.executable, "-c", printing], tmp_path / "step.log", timeout=3)
    assert "stopped at its 3 s limit" in str(stopped.value)
    assert gpu.last_json(stopped.value.output) == {"eager": 1.5}
    assert (tmp_path / "step.log").read_text() == json.dumps({"eager": 1.5}) + "\ncompiling\n"
    assert gpu.last_json("no figures yet\n") == {}
