import pytest

from ecgdist.config import ConfigError, FinetuneConfig, PretrainConfig, load_config, save_resolved


def test_defaults_then_yaml_then_overrides(tmp_path):
    yaml = tmp_path / "c.yaml"
    yaml.write_text("train:\n  steps: 7\n  micro_batch: 4\n")
    cfg = load_config(PretrainConfig, yaml, ["train.micro_batch=2"])
    assert cfg.train.steps == 7  # from YAML
    assert cfg.train.micro_batch == 2  # override beats YAML
    assert cfg.train.grad_accum == 1  # schema default


def test_misspelled_key_is_named_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.corpos'.*did you mean 'corpus'"):
        load_config(PretrainConfig, None, ["data.corpos=/x"])


def test_misspelled_key_in_yaml_is_named(tmp_path):
    yaml = tmp_path / "c.yaml"
    yaml.write_text("trian:\n  steps: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'.*valid keys in the top level: run, data"):
        load_config(PretrainConfig, yaml)


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"config key 'train\.steps'"):
        load_config(PretrainConfig, None, ["train.steps=many"])


def test_invalid_choice_lists_the_choices():
    with pytest.raises(ConfigError, match=r"'model\.name' is 'resnet'; valid choices: net1d, mtecg_mae, mtecg_cls"):
        load_config(PretrainConfig, None, ["model.name=resnet"])


def test_out_of_range_value_is_rejected():
    with pytest.raises(ConfigError, match="checkpoint.keep_last"):
        load_config(PretrainConfig, None, ["checkpoint.keep_last=1"])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(PretrainConfig, None, ["train.steps=11", "model.name=mtecg_mae"])
    path = save_resolved(cfg, tmp_path / "run")
    again = load_config(PretrainConfig, path)
    assert again == cfg


@pytest.mark.parametrize("overrides, key", [
    (["model.mask_ratio=0.5"], "model.mask_ratio"),  # a masked-autoencoder key with net1d
    (["model.name=mtecg_mae", "model.widths=[8,16]", "model.blocks=[1,1]"], "model.widths"),
    (["model.name=mtecg_cls", "model.decoder_width=64"], "model.decoder_width"),  # the classifier has no decoder
    (["model.name=mtecg_mae", "model.pool=mean"], "model.pool"),  # the autoencoder has no head to pool for
    (["model.name=mtecg_mae", "model.num_classes=5"], "model.num_classes"),
])
def test_a_model_key_the_chosen_model_would_ignore_is_an_error_naming_it(overrides, key):
    with pytest.raises(ConfigError, match=rf"config key '{key}' is .* but model.name=\w+ does not read it"):
        load_config(PretrainConfig, None, overrides)
    same_default = load_config(PretrainConfig, None, ["model.name=mtecg_mae", "model.widths=[64,160,160,400,400,1024,1024]"])
    assert same_default.model.name == "mtecg_mae"  # a default restated is not a setting


@pytest.mark.parametrize("override", ["model.drop_path=0.2", "model.num_classes=5"])
def test_model_keys_fine_tuning_sets_itself_are_refused_there(override):
    with pytest.raises(ConfigError, match=rf"config key '{override.split('=')[0]}' is .* fine-tuning ignores it"):
        load_config(FinetuneConfig, None, [override])
    with pytest.raises(ConfigError, match=r"'sweep.backbones \(b\) model.drop_path' is 0.2"):
        load_config(FinetuneConfig, None, ["sweep.backbones=[{name: b, model: {drop_path: 0.2}}]"])
    assert load_config(PretrainConfig, None, [override]).model  # pre-training reads both


@pytest.mark.parametrize("override, key", [("train.lr_peak=inf", "train.lr_peak"),
                                           ("data.corpus_weights=[1,.inf]", "data.corpus_weights"),
                                           ("train.lr_peak=nan", "train.lr_peak")])
def test_numbers_must_be_finite(override, key):
    with pytest.raises(ConfigError, match=rf"config key '{key}' is (inf|nan); it must be a finite number"):
        load_config(PretrainConfig, None, ["data.corpus=[a,b]", override])


@pytest.mark.parametrize("text, said", [("- run\n- data\n", "holds a list, not a mapping of sections"),
                                        ("train: [1\n", "is not valid YAML (line 2, column 1)")])
def test_a_config_file_that_is_no_mapping_is_one_line(tmp_path, text, said, capsys):
    from ecgdist.pretrain.main import main

    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")):
        load_config(PretrainConfig, tmp_path / "c.yaml")
    assert main([str(tmp_path / "c.yaml")]) == 2 and said in capsys.readouterr().err
