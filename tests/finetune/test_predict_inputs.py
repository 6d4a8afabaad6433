"""``python -m ecgdist.predict`` on what users really give it: one line per problem, never a traceback."""

import json
import shutil

import numpy as np
import pytest
import wfdb
from conftest import REPO, build_corpus

from ecgdist.config import ConfigError, FinetuneConfig, load_config, to_dict
from ecgdist.data.shards import read_manifest
from ecgdist.finetune.job import JobSpec, Loaders
from ecgdist.finetune.predict import main
from ecgdist.finetune.weights import build_finetune_model
from ecgdist.models.pretrained import save_weights

RECORD = "ptbxl-mini/records500/06000/06000_hr"


@pytest.fixture(scope="module")
def model_file(ptbxl_corpus, tmp_path_factory):
    """A fine-tune job's model.pth (random weights: what reaches the model is tested, not its skill)."""
    cfg = load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny.yaml", [f"data.corpus={ptbxl_corpus}"])
    path = tmp_path_factory.mktemp("model") / "model.pth"
    save_weights(build_finetune_model(cfg, "scratch", 3), path, classes=["NORM", "MI", "STTC"], config=to_dict(cfg),
                 recipe=read_manifest(ptbxl_corpus).recipe.to_dict(), task="superdiagnostic")
    return path


def test_a_header_with_a_nan_gain_is_one_line(model_file, shared_data, tmp_path, capsys):
    for suffix in (".hea", ".dat"):
        shutil.copy(shared_data / f"{RECORD}{suffix}", tmp_path / f"06000_hr{suffix}")
    header = (tmp_path / "06000_hr.hea").read_text().splitlines()
    header[1] = header[1].replace("1000.0(0)/mV", "NaN(0)/mV")
    (tmp_path / "06000_hr.hea").write_text("\n".join(header) + "\n")
    assert main([str(model_file), str(tmp_path / "06000_hr"), str(shared_data / RECORD)]) == 1
    out = capsys.readouterr()
    assert "cannot classify: gain 'NaN' of lead I in the header is not a positive number" in out.err
    assert f"{shared_data / RECORD}: " in out.out  # the good record is still classified


def test_a_pre_training_export_is_named_as_one(model_file, shared_data, tmp_path, capsys):
    import torch
    blob = torch.load(model_file, weights_only=True)
    torch.save({"state_dict": blob["state_dict"], "config": blob["config"], "provenance": {"corpora": []}},
               tmp_path / "export.pth")
    assert main([str(tmp_path / "export.pth"), str(shared_data / RECORD)]) == 2
    assert "is a pre-training export (python -m ecgdist.export): it has no task classes" in capsys.readouterr().err


def test_corpora_that_are_invalid_corrupt_or_made_otherwise_are_refused(model_file, ptbxl_corpus, shared_data,
                                                                        tmp_path, capsys):
    invalid = tmp_path / "invalid"
    shutil.copytree(ptbxl_corpus, invalid)
    (invalid / "manifest.json").write_text('{"format_version": 1, "recipe": ')
    corrupt = tmp_path / "corrupt"
    shutil.copytree(ptbxl_corpus, corrupt)
    manifest = json.loads((corrupt / "manifest.json").read_text())
    manifest["shards"][0]["bytes"] += 1
    (corrupt / "manifest.json").write_text(json.dumps(manifest))
    other_rate = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "r250", "--rate", "250")
    assert main([str(model_file), str(invalid), str(corrupt), str(other_rate), str(ptbxl_corpus)]) == 1
    err = capsys.readouterr()
    assert f"{invalid}: cannot classify: {invalid / 'manifest.json'} is not a valid manifest" in err.err
    assert f"{corrupt}: cannot classify: corpus {corrupt}: 1 shards do not match the manifest" in err.err
    assert f"{other_rate}: cannot classify: corpus {other_rate} was made with another recipe than the model was " \
           "trained on: rate_hz 250 (the model's: 500)" in err.err
    assert "Traceback" not in err.err and err.out.count("ptbxl:") == 110  # the good corpus, every record


def test_a_short_record_is_classified_and_says_how_much_was_padded(model_file, shared_data, tmp_path, capsys):
    record = wfdb.rdrecord(str(shared_data / RECORD))
    wfdb.wrsamp("short", fs=record.fs, units=record.units, sig_name=record.sig_name, p_signal=record.p_signal[:3000],
                fmt=record.fmt, adc_gain=record.adc_gain, baseline=record.baseline, write_dir=str(tmp_path))
    assert main([str(model_file), str(tmp_path / "short")]) == 0
    out = capsys.readouterr()
    assert "note: " in out.err and "6.00 s is shorter than the model's 10 s window: zero-padded by 4.00 s (40% of " \
        "the input)" in out.err and f"{tmp_path / 'short'}: " in out.out


def test_a_crop_longer_than_the_corpus_window_is_refused_naming_both(ptbxl_corpus):
    cfg = load_config(FinetuneConfig, REPO / "configs/finetune/ptbxl_tiny.yaml",
                      [f"data.corpus={ptbxl_corpus}", "data.crop_samples=6000"])
    with pytest.raises(ConfigError, match="'data.crop_samples' is 6000, longer than the 5000-sample windows of corpus "
                                          f"{ptbxl_corpus}: 17% of every input would be zero padding"):
        Loaders(cfg, JobSpec("superdiagnostic", "baseline", 1.0, 0))
    from ecgdist.config import PretrainConfig
    from ecgdist.pretrain.data import open_corpora
    pretraining = load_config(PretrainConfig, REPO / "configs/pretrain/ecgfounder_tiny.yaml",
                              [f"data.corpus={ptbxl_corpus}", "data.crop_samples=6000"])
    with pytest.raises(ConfigError, match="'data.crop_samples' is 6000, longer than the 5000-sample windows"):
        open_corpora(pretraining)


def test_the_released_ecgfounder_file_predicts_its_150_outputs_by_name(shared_data, tmp_path, capsys):
    """The released layout ({"state_dict"} of the full Net1D, nothing else): its outputs named in the
    released code's order (its tasks.txt, ../shared/reference), the record read with its recipe."""
    from ecgdist.finetune.predict import Classifier
    from ecgdist.models.net1d import Net1D

    save_weights(Net1D(), tmp_path / "12_lead_ECGFounder.pth")
    names = (shared_data.parent / "reference" / "ecgfounder_tasks.txt").read_text().splitlines()
    classifier = Classifier(tmp_path / "12_lead_ECGFounder.pth")
    assert classifier.classes == names and len(names) == 150
    assert (classifier.recipe.rate_hz, classifier.recipe.filter, classifier.cfg.data.normalize) == \
        (500, "ecgfounder", "ecgfounder")
    assert main([str(tmp_path / "12_lead_ECGFounder.pth"), str(shared_data / RECORD), "--json"]) == 0
    probabilities = json.loads(capsys.readouterr().out.splitlines()[-1])["probabilities"]
    assert sorted(probabilities) == sorted(names)
    assert all(0 <= p <= 1 for p in probabilities.values())


def test_explain_draws_twelve_labelled_leads_with_the_top_classes_attributions(model_file, shared_data, tmp_path,
                                                                              capsys):
    import matplotlib.image

    from ecgdist.finetune.explain import draw, explain_record
    from ecgdist.finetune.predict import Classifier

    out = tmp_path / "explain.png"
    assert main([str(model_file), str(shared_data / RECORD), "--explain", str(out)]) == 0
    assert "drawn with its attributions to" in capsys.readouterr().out
    picture = matplotlib.image.imread(out)
    assert picture.ndim == 3 and picture.shape[0] > 500 and picture.shape[1] > 500
    classifier = Classifier(model_file)
    explanation = explain_record(classifier, shared_data / RECORD, tmp_path / "again.png")
    assert explanation.leads == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert len(explanation.attributions) == 2 and set(explanation.attributions) <= set(classifier.classes)
    for values in explanation.attributions.values():
        assert values.shape == explanation.signal.shape and np.abs(values).max() > 0
        assert (np.abs(values).max(axis=1) > 0).sum() >= 6  # attributed across leads, not one
    fig = draw(explanation, "06000_hr")
    panels = [[t.get_text() for t in ax.texts] for ax in fig.axes]
    # Row by row, limb leads on the left and chest leads on the right, as a 6 x 2 print.
    assert panels[0::2] == [[lead] for lead in explanation.leads[:6]]
    assert panels[1::2] == [[lead] for lead in explanation.leads[6:]]
    # The paper: 1 mm = 0.04 s across, 0.1 mV up (25 mm/s, 10 mm/mV).
    assert all(ax.get_aspect() == pytest.approx(0.4) for ax in fig.axes)
    assert np.diff(fig.axes[0].get_xticks(minor=True))[:3] == pytest.approx([0.04] * 3)
    assert main([str(model_file), str(shared_data / RECORD), str(shared_data / RECORD), "--explain", str(out)]) == 2
    assert "--explain draws one WFDB record" in capsys.readouterr().err
