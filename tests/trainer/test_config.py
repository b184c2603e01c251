"""Hyperparameters (strings coerced, SM_HP_* overrides, clear errors), job paths and metric regexes."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from tt_trainer.config import Hyperparameters, load_hyperparameters, parse_hyperparameters, resolve_paths
from tt_trainer.errors import ConfigError
from tt_trainer.progress import METRIC_DEFINITIONS, PROGRESS_FILE, ProgressReporter


def test_defaults_follow_the_product_contract() -> None:
    hp = Hyperparameters()
    assert (hp.n_epochs, hp.learning_rate, hp.batch_size) == (3, 2e-4, 8)
    assert (hp.lora_rank, hp.lora_alpha, hp.lora_dropout) == (16, 32, 0.05)
    assert (hp.max_seq_length, hp.long_examples) == (2048, "truncate")
    assert (hp.max_output_tokens, hp.eval_reserved_output_tokens) == (256, 64)
    assert hp.base_model == "tunedtensor/tiny-chat"
    assert hp.packing is True
    assert hp.effective_micro_batch_size == 4


def test_sagemaker_strings_are_coerced() -> None:
    raw = {
        "n_epochs": "5",
        "learning_rate": "1e-3",
        "batch_size": "16",
        "lora_dropout": "0",
        "packing": "false",
        "long_examples": "SKIP",
        "base_model": '"meta-llama/Llama-3.2-3B-Instruct"',  # the SageMaker SDK JSON-encodes values
        "max_steps": "",  # blank = not set
        "micro_batch_size": "None",
        "gradient_checkpointing": "true",
    }
    hp, ignored = parse_hyperparameters(raw)
    assert ignored == []
    assert hp.n_epochs == 5 and hp.learning_rate == 1e-3 and hp.batch_size == 16
    assert hp.packing is False and hp.gradient_checkpointing is True
    assert hp.long_examples == "skip"
    assert hp.base_model == "meta-llama/Llama-3.2-3B-Instruct"
    assert hp.max_steps is None and hp.micro_batch_size is None
    assert hp.effective_micro_batch_size == 4


def test_sm_hp_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps({"n_epochs": "2", "learning_rate": "0.1"}))
    hp, _ = load_hyperparameters(path, {"SM_HP_N_EPOCHS": "7", "SM_HP_UNRELATED_THING": "x"})
    assert hp.n_epochs == 7 and hp.learning_rate == 0.1


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    hp, ignored = load_hyperparameters(tmp_path / "absent.json", {})
    assert hp == Hyperparameters() and ignored == []


def test_unknown_names_are_reported_and_workflow_names_ignored() -> None:
    _, ignored = parse_hyperparameters(
        {"max_eval_examples": "50", "sagemaker_program": "x", "lerning_rate": "0.1", "use_llm_judge": "true"}
    )
    assert ignored == ["lerning_rate"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"learning_rate": "fast"}, "learning_rate = 'fast': Input should be a valid number"),
        ({"n_epochs": "three"}, "n_epochs = 'three'"),
        ({"n_epochs": "21"}, "n_epochs = '21': Input should be less than or equal to 20"),
        ({"long_examples": "drop"}, "long_examples = 'drop'"),
        ({"lora_dropout": "1"}, "lora_dropout"),
        (
            {"max_output_tokens": "10", "eval_reserved_output_tokens": "20"},
            "must not exceed max_output_tokens",
        ),
    ],
)
def test_invalid_values_name_the_field(raw: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_hyperparameters(raw)
    assert fragment in str(info.value)
    assert str(info.value).startswith("Invalid hyperparameters:")


def test_malformed_hyperparameters_file(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"hyperparameters\.json is not valid JSON"):
        load_hyperparameters(path, {})
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_hyperparameters(path, {})


def test_paths_default_to_the_sagemaker_layout() -> None:
    paths = resolve_paths({})
    assert paths.hyperparameters_file == Path("/opt/ml/input/config/hyperparameters.json")
    assert paths.model_dir == Path("/opt/ml/model")
    assert paths.output_data_dir == Path("/opt/ml/output/data")
    assert paths.checkpoint_dir == Path("/opt/ml/checkpoints")
    assert paths.failure_file == Path("/opt/ml/output/failure")
    assert paths.channels["train"] == Path("/opt/ml/input/data/train")
    assert paths.channels["parent_model"] == Path("/opt/ml/input/data/parent_model")


def test_paths_from_sm_variables_root_and_overrides(tmp_path: Path) -> None:
    env = {
        "SM_MODEL_DIR": "/m",
        "SM_OUTPUT_DATA_DIR": "/o",
        "SM_CHANNEL_TRAIN": "/t",
        "SM_CHANNEL_BASE_MODEL": "/b",
        "TT_FAILURE_FILE": "/f",
    }
    paths = resolve_paths(
        env,
        sm_root=tmp_path,
        overrides={"model_dir": tmp_path / "cli"},
        channel_overrides={"eval": tmp_path / "e"},
    )
    assert paths.model_dir == tmp_path / "cli"  # CLI beats env
    assert paths.output_data_dir == Path("/o")
    assert paths.channels["train"] == Path("/t")
    assert paths.channels["base_model"] == Path("/b")
    assert paths.channels["eval"] == tmp_path / "e"
    assert paths.failure_file == Path("/f")
    assert paths.checkpoint_dir == tmp_path / "checkpoints"
    assert paths.channel("eval") is None  # given but absent on disk


def test_metric_regexes_match_their_own_lines_only(tmp_path: Path) -> None:
    stream = io.StringIO()
    reporter = ProgressReporter(tmp_path, stream)
    reporter.event("data", rows=3, tokens=100)
    reporter.train_step(
        step=12,
        total_steps=60,
        epoch=0.6,
        loss=1.2345,
        learning_rate=2e-05,
        tokens_per_second=5312.44,
        token_accuracy=0.61,
    )
    reporter.validation(step=20, epoch=1, loss=1.4, token_accuracy=0.55)
    data_line, step_line, valid_line = stream.getvalue().splitlines()
    expected = {
        "train:loss": 1.2345,
        "train:learning_rate": 2e-05,
        "train:epoch": 0.6,
        "train:step": 12,
        "train:tokens_per_second": 5312.4,
        "train:token_accuracy": 0.61,
        "validation:loss": 1.4,
        "validation:token_accuracy": 0.55,
    }
    assert sorted(d["Name"] for d in METRIC_DEFINITIONS) == sorted(expected)
    for definition in METRIC_DEFINITIONS:
        name = definition["Name"]
        pattern = re.compile(definition["Regex"])
        assert pattern.groups == 1
        own, other = (step_line, valid_line) if name.startswith("train:") else (valid_line, step_line)
        match = pattern.search(own)
        assert match is not None and float(match.group(1)) == expected[name], definition
        assert pattern.search(data_line) is None and pattern.search(other) is None
    assert list(json.loads(step_line)) == [
        "event",
        "step",
        "total_steps",
        "epoch",
        "loss",
        "learning_rate",
        "tokens_per_second",
        "token_accuracy",
    ]
    progress = json.loads((tmp_path / PROGRESS_FILE).read_text())
    assert progress["status"] == "training" and progress["step"] == 12 and progress["total_steps"] == 60
