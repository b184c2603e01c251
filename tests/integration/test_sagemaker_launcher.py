"""SageMakerLauncher against botocore's SageMaker model (Stubber checks every request and response)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from tt_core.adapters.s3 import S3ObjectStore
from tt_core.adapters.sagemaker import METRIC_DEFINITIONS, SageMakerLauncher
from tt_core.ports import TrainingJobSpec
from tt_trainer import progress as trainer_progress

BUCKET = "tt-bucket"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cdk-assets:abc"
ROLE = "arn:aws:iam::123456789012:role/tt-training"
JOB_NAME = "tt-0b5c"
RUN = "accounts/acct/runs/run-1"
CHECKPOINTS = f"{RUN}/checkpoints"


def _job(**changes: Any) -> TrainingJobSpec:
    values: dict[str, Any] = {
        "job_name": JOB_NAME,
        "base_model": "tunedtensor/tiny-chat",
        "hyperparameters": {
            "n_epochs": "3",
            "learning_rate": "0.0002",
            "base_model": "tunedtensor/tiny-chat",
        },
        "channels": {"train": f"{RUN}/train/", "eval": f"{RUN}/eval/"},
        "output_prefix": f"{RUN}/output",
        "checkpoint_prefix": CHECKPOINTS,
        "instance_type": "ml.g5.xlarge",
        "max_runtime_seconds": 7200,
    }
    return TrainingJobSpec(**{**values, **changes})


@pytest.fixture
def client() -> Iterator[Any]:
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    yield sagemaker


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def objects() -> Iterator[S3ObjectStore]:
    """The real S3 adapter on moto: the launcher reads the trainer's progress through it."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield S3ObjectStore(s3, BUCKET)


@pytest.fixture
def launcher(client: Any, objects: S3ObjectStore) -> SageMakerLauncher:
    return SageMakerLauncher(client, objects, bucket=BUCKET, image_uri=IMAGE, role_arn=ROLE, volume_gb=80)


def _channel(name: str, prefix: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{BUCKET}/{prefix}",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def _expected_request(*, spot: bool) -> dict[str, Any]:
    stopping = {"MaxRuntimeInSeconds": 7200, **({"MaxWaitTimeInSeconds": 7200} if spot else {})}
    return {
        "TrainingJobName": JOB_NAME,
        "HyperParameters": {
            "n_epochs": "3",
            "learning_rate": "0.0002",
            "base_model": "tunedtensor/tiny-chat",
        },
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": list(trainer_progress.METRIC_DEFINITIONS),
        },
        "RoleArn": ROLE,
        "InputDataConfig": [_channel("train", f"{RUN}/train/"), _channel("eval", f"{RUN}/eval/")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/{RUN}/output"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 80},
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spot,
        "CheckpointConfig": {"S3Uri": f"s3://{BUCKET}/{CHECKPOINTS}", "LocalPath": "/opt/ml/checkpoints"},
    }


def test_metric_definitions_are_the_trainers() -> None:
    """tt_core may not import tt_trainer: the adapter keeps its own copy, equal to the trainer's."""
    assert METRIC_DEFINITIONS == trainer_progress.METRIC_DEFINITIONS
    line = '{"event": "train_step", "step": 12, "total_steps": 60, "epoch": 0.6, "loss": 1.2345e-05}'
    loss = next(m for m in METRIC_DEFINITIONS if m["Name"] == "train:loss")
    assert re.search(loss["Regex"], line).group(1) == "1.2345e-05"  # type: ignore[union-attr]


@pytest.mark.parametrize("spot", [False, True])
def test_start_creates_the_training_job(launcher: SageMakerLauncher, stubber: Stubber, spot: bool) -> None:
    stubber.add_response(
        "create_training_job",
        {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB_NAME}"},
        _expected_request(spot=spot),
    )
    launcher.start(_job(use_spot=spot))


def test_every_channel_becomes_an_input(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    channels = {
        "train": f"{RUN}/train/",
        "parent_model": "accounts/acct/models/m-1/model.tar.gz",
        "spec": f"{RUN}/tunedtensor.json",
    }
    expected = _expected_request(spot=False)
    expected["InputDataConfig"] = [_channel(name, prefix) for name, prefix in channels.items()]
    stubber.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:x"}, expected)
    launcher.start(_job(channels=channels))


def test_starting_a_job_that_exists_is_not_an_error(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    """StartTraining retried after its first call got through: the job is already there."""
    stubber.add_client_error(
        "create_training_job",
        service_error_code="ResourceInUse",
        service_message="Training job names must be unique within an AWS account and region.",
        http_status_code=400,
        expected_params=_expected_request(spot=False),
    )
    launcher.start(_job())


def test_other_start_errors_propagate(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    stubber.add_client_error(
        "create_training_job", service_error_code="ResourceLimitExceeded", http_status_code=400
    )
    with pytest.raises(ClientError, match="ResourceLimitExceeded"):
        launcher.start(_job())


def _described(status: str, secondary: str, **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": JOB_NAME,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB_NAME}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/{RUN}/output/{JOB_NAME}/output/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 80},
        "StoppingCondition": {"MaxRuntimeInSeconds": 7200},
        "CreationTime": datetime(2026, 11, 21, tzinfo=UTC),
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "secondary", "state"),
    [
        ("InProgress", "Starting", "queued"),
        ("InProgress", "Pending", "queued"),
        ("InProgress", "LaunchingMLInstances", "queued"),
        ("InProgress", "PreparingTrainingStack", "queued"),
        ("InProgress", "Downloading", "queued"),
        ("InProgress", "DownloadingTrainingImage", "queued"),
        ("InProgress", "Training", "running"),
        ("InProgress", "Uploading", "running"),
        ("InProgress", "Restarting", "running"),
        ("Completed", "Completed", "completed"),
        ("Failed", "Failed", "failed"),
        ("Stopping", "Stopping", "stopped"),
        ("Stopped", "Stopped", "stopped"),
        ("Stopped", "MaxRuntimeExceeded", "stopped"),
    ],
)
def test_status_mapping(
    launcher: SageMakerLauncher, stubber: Stubber, status: str, secondary: str, state: str
) -> None:
    stubber.add_response(
        "describe_training_job", _described(status, secondary), {"TrainingJobName": JOB_NAME}
    )
    described = launcher.describe(_job())
    assert described.state == state
    assert described.failure_reason is None
    assert (described.progress, described.log) == (None, [])


def test_a_failed_job_carries_the_trainers_failure_reason(
    launcher: SageMakerLauncher, stubber: Stubber
) -> None:
    reason = "The train channel is empty: it holds no .jsonl file."
    stubber.add_response("describe_training_job", _described("Failed", "Failed", FailureReason=reason))
    described = launcher.describe(_job())
    assert (described.state, described.failure_reason) == ("failed", reason)


def test_describe_reads_live_progress_from_the_checkpoint_sync(
    launcher: SageMakerLauncher, stubber: Stubber, objects: S3ObjectStore
) -> None:
    progress = {"status": "training", "step": 12, "total_steps": 60, "epoch": 0.6, "n_epochs": 3}
    steps = [
        {"event": "train_step", "step": 1, "total_steps": 60, "epoch": 0.05, "loss": 2.3},
        {"event": "train_step", "step": 2, "total_steps": 60, "epoch": 0.1, "loss": 2.1},
    ]
    objects.put_bytes(f"{CHECKPOINTS}/progress/progress.json", json.dumps(progress).encode())
    # A torn last line (the file was synced mid-append) and a blank line are skipped.
    log = "".join(json.dumps(step) + "\n" for step in steps) + '\n{"event": "train_st'
    objects.put_bytes(f"{CHECKPOINTS}/progress/training_log.jsonl", log.encode())
    stubber.add_response("describe_training_job", _described("InProgress", "Training"))
    described = launcher.describe(_job(checkpoint_prefix=f"{CHECKPOINTS}/"))
    assert described.state == "running"
    assert described.progress == progress
    assert described.log == steps


def test_a_progress_file_caught_mid_write_is_no_progress(
    launcher: SageMakerLauncher, stubber: Stubber, objects: S3ObjectStore
) -> None:
    objects.put_bytes(f"{CHECKPOINTS}/progress/progress.json", b'{"status": "trai')
    stubber.add_response("describe_training_job", _described("InProgress", "Training"))
    assert launcher.describe(_job()).progress is None


def test_stop_stops_the_job(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    stubber.add_response("stop_training_job", {}, {"TrainingJobName": JOB_NAME})
    launcher.stop(JOB_NAME)


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped", "Stopping"])
def test_stopping_an_ended_job_is_not_an_error(
    launcher: SageMakerLauncher, stubber: Stubber, status: str
) -> None:
    stubber.add_client_error(
        "stop_training_job",
        service_error_code="ValidationException",
        service_message=f"The request was rejected because the training job is in status {status}.",
        http_status_code=400,
        expected_params={"TrainingJobName": JOB_NAME},
    )
    stubber.add_response("describe_training_job", _described(status, status), {"TrainingJobName": JOB_NAME})
    launcher.stop(JOB_NAME)


def test_stopping_a_job_never_created_is_not_an_error(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    stubber.add_client_error("stop_training_job", service_error_code="ResourceNotFound", http_status_code=400)
    launcher.stop(JOB_NAME)


def test_a_refused_stop_of_a_running_job_propagates(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    stubber.add_client_error(
        "stop_training_job", service_error_code="ValidationException", http_status_code=400
    )
    stubber.add_response("describe_training_job", _described("InProgress", "Training"))
    with pytest.raises(ClientError, match="ValidationException"):
        launcher.stop(JOB_NAME)


def test_discard_makes_no_call(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    # The job's outputs live under the run's prefix, which the run's deletion empties: nothing else to remove.
    launcher.discard("tt-deleted")  # the stubber refuses any call it was not given
    stubber.assert_no_pending_responses()
