"""SageMakerLauncher against botocore's SageMaker model (Stubber checks every request and response; errors are
stubbed with the codes and messages SageMaker really answers)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from tt_core.adapters.s3 import S3ObjectStore
from tt_core.adapters.sagemaker import (
    CLIENT_CONFIG,
    METRIC_DEFINITIONS,
    SageMakerLauncher,
    quota_exceeded_message,
)
from tt_core.errors import RunStepError
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
        "create_training_job",
        service_error_code="ValidationException",
        service_message="1 validation error detected: Value 'ml.x.large' at 'resourceConfig.instanceType' "
        "failed to satisfy constraint",
        http_status_code=400,
    )
    with pytest.raises(ClientError, match="ValidationException"):
        launcher.start(_job())


# What CreateTrainingJob answers when the account's quota for the instance type is too low (a new account's
# ml.g5.xlarge quota is often 0). ResourceLimitExceeded is the error shape the service model declares.
def _limit_message(quota: str) -> str:
    return (
        f"The account-level service limit '{quota}' is 0 Instances, with current utilization of 0 Instances "
        "and a request delta of 1 Instances. Please use AWS Service Quotas to request an increase for this "
        "quota. If AWS Service Quotas is not available, contact AWS support to request an increase for this "
        "quota."
    )


PROVIDER_WORDS = re.compile(r"sagemaker|s3://|\baws\b|\bec2\b|amazon|service quotas", re.IGNORECASE)


@pytest.mark.parametrize(
    ("spot", "quota"),
    [(False, "ml.g5.xlarge for training job usage"), (True, "ml.g5.xlarge for spot training job usage")],
)
def test_a_quota_too_low_fails_the_run_with_the_products_sentence(
    launcher: SageMakerLauncher, stubber: Stubber, spot: bool, quota: str
) -> None:
    stubber.add_client_error(
        "create_training_job",
        service_error_code="ResourceLimitExceeded",
        service_message=_limit_message(quota),
        http_status_code=400,
        expected_params=_expected_request(spot=spot),
    )
    with pytest.raises(RunStepError) as raised:
        launcher.start(_job(use_spot=spot))
    # Exactly RunStepError: RecordFailure shows its message as the run's error (not "unexpected error").
    assert type(raised.value) is RunStepError
    assert raised.value.message == (
        f"Training capacity for ml.g5.xlarge is not available in this account: the training instance quota "
        f"'{quota}' is too low. Ask your operator to request a quota increase or to choose another instance "
        "type, then start the run again."
    )
    assert not PROVIDER_WORDS.search(raised.value.message)


def test_a_quota_without_a_name_still_names_the_instance_types_quota(
    launcher: SageMakerLauncher, stubber: Stubber
) -> None:
    stubber.add_client_error(
        "create_training_job",
        service_error_code="ResourceLimitExceeded",
        service_message="You have exceeded a SageMaker resource limit.",
        http_status_code=400,
    )
    with pytest.raises(RunStepError, match=r"'ml\.g5\.xlarge for training job usage' is too low") as raised:
        launcher.start(_job())
    assert not PROVIDER_WORDS.search(raised.value.message)


def test_an_account_wide_training_limit_is_named(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    stubber.add_client_error(
        "create_training_job",
        service_error_code="ResourceLimitExceeded",
        service_message=_limit_message("Number of instances across all training jobs"),
        http_status_code=400,
    )
    with pytest.raises(RunStepError) as raised:
        launcher.start(_job())
    assert raised.value.message == (
        "Training could not start: the account's training quota 'Number of instances across all training "
        "jobs' is used up. Wait for other training to finish or ask your operator to request a quota "
        "increase, then start the run again."
    )


def test_the_capacity_sentence_becomes_the_runs_error() -> None:
    """As Lambda reports the raised error to the Catch, and RecordFailure reads it back (§9.2)."""
    from tests.unit.test_run_job_spec import _run
    from tt_core.models.workflow import RunTaskState, WorkflowError
    from tt_core.services.run_workflow import RunWorkflowService

    error = ClientError(
        {
            "Error": {
                "Code": "ResourceLimitExceeded",
                "Message": _limit_message("ml.g5.xlarge for training job usage"),
            }
        },
        "CreateTrainingJob",
    )
    sentence = quota_exceeded_message(error, "ml.g5.xlarge", spot=False)
    cause = json.dumps({"errorType": RunStepError.__name__, "errorMessage": sentence})
    state = RunTaskState(account_id="a1", run_id="r1", error=WorkflowError(Error="RunStepError", Cause=cause))
    assert RunWorkflowService._error_message(_run("meta-llama/Llama-3.2-3B-Instruct"), state) == sentence


def test_throttling_left_after_the_retries_is_a_readable_failure(
    launcher: SageMakerLauncher, stubber: Stubber
) -> None:
    """The Stubber answers once, past the retry handler: this is what the client raises when its retries
    are used up."""
    stubber.add_client_error(
        "create_training_job", service_error_code="ThrottlingException", service_message="Rate exceeded",
        http_status_code=400,
    )  # fmt: skip
    with pytest.raises(RunStepError, match=r"^Training could not start: the training service is busy"):
        launcher.start(_job())


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _http(status: int, body: dict[str, Any]) -> AWSResponse:
    headers = HeadersDict({"x-amzn-RequestId": "r-1", "Content-Type": "application/x-amz-json-1.1"})
    return AWSResponse(
        "https://api.sagemaker.us-east-1.amazonaws.com/", status, headers, _Body(json.dumps(body).encode())
    )


@pytest.fixture
def wired_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The SageMaker client the composition root builds on AWS, its retry sleeps skipped."""
    import time

    from tt_core import wiring

    for name in ("TT_MODE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    wiring.reset()
    launcher = wiring._launcher()
    assert isinstance(launcher, SageMakerLauncher)
    yield launcher._client
    wiring.reset()


@pytest.mark.parametrize("throttled", [1, 4])
def test_throttling_is_retried_by_the_wired_client(wired_client: Any, throttled: int) -> None:
    """Over HTTP as SageMaker's JSON protocol answers (400, __type ThrottlingException): botocore's standard
    retries parse and retry it; the job is created on the attempt after the last throttle."""
    answers = [_http(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})] * throttled
    answers.append(
        _http(200, {"TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB_NAME}"})
    )
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return answers[len(sent) - 1]

    wired_client.meta.events.register("before-send.sagemaker.CreateTrainingJob", answer)
    launcher = SageMakerLauncher(wired_client, _NoObjects(), bucket=BUCKET, image_uri=IMAGE, role_arn=ROLE)
    launcher.start(_job())
    assert len(sent) == throttled + 1


def test_throttling_past_the_wired_clients_attempts_fails_readably(wired_client: Any) -> None:
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return _http(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})

    wired_client.meta.events.register("before-send.sagemaker.CreateTrainingJob", answer)
    launcher = SageMakerLauncher(wired_client, _NoObjects(), bucket=BUCKET, image_uri=IMAGE, role_arn=ROLE)
    with pytest.raises(RunStepError, match="the training service is busy"):
        launcher.start(_job())
    assert len(sent) == CLIENT_CONFIG.retries["total_max_attempts"] == 5


class _NoObjects:
    """start() and stop() never read objects."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected object store call {name}")


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


def test_describing_a_job_that_is_gone_is_a_failed_job(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    # What SageMaker really answers for a job name it does not know (not the declared ResourceNotFound).
    stubber.add_client_error(
        "describe_training_job",
        service_error_code="ValidationException",
        service_message="Requested resource not found.",
        http_status_code=400,
        expected_params={"TrainingJobName": JOB_NAME},
    )
    described = launcher.describe(_job())
    assert (described.state, described.failure_reason) == (
        "failed",
        "the training job no longer exists. Start the run again.",
    )


def test_a_job_that_got_no_machine_fails_in_the_products_words(
    launcher: SageMakerLauncher, stubber: Stubber
) -> None:
    reason = (
        "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML "
        "instance type."
    )
    stubber.add_response("describe_training_job", _described("Failed", "Failed", FailureReason=reason))
    described = launcher.describe(_job())
    assert (described.state, described.failure_reason) == (
        "failed",
        "no ml.g5.xlarge training machine was available. Start the run again later, or ask your operator to "
        "choose another instance type.",
    )


def test_describe_still_throttled_after_the_retries_is_a_readable_failure(
    launcher: SageMakerLauncher, stubber: Stubber
) -> None:
    stubber.add_client_error(
        "describe_training_job", service_error_code="ThrottlingException", service_message="Rate exceeded",
        http_status_code=400,
    )  # fmt: skip
    with pytest.raises(
        RunStepError, match=r"^Training progress could not be read: the training service is busy"
    ):
        launcher.describe(_job())


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
    assert described.epoch_index is None  # no epoch has ended yet


def test_describe_reads_the_epoch_index_the_checkpoint_sync_uploaded(
    launcher: SageMakerLauncher, stubber: Stubber, objects: S3ObjectStore
) -> None:
    """§9.10 on AWS: the trainer's epochs/ folder is in the checkpoint dir, which SageMaker syncs."""
    index = {"selected_epoch": None, "checkpoints": [{"epoch": 2, "file": "checkpoint-epoch-2.tar.gz"}]}
    objects.put_bytes(f"{CHECKPOINTS}/epochs/index.json", json.dumps(index).encode())
    stubber.add_response("describe_training_job", _described("InProgress", "Training"))
    assert launcher.describe(_job(checkpoint_prefix=f"{CHECKPOINTS}/")).epoch_index == index
    objects.put_bytes(f"{CHECKPOINTS}/epochs/index.json", b'{"checkpoints": [')  # caught mid-sync
    stubber.add_response("describe_training_job", _described("InProgress", "Training"))
    assert launcher.describe(_job(checkpoint_prefix=f"{CHECKPOINTS}/")).epoch_index is None


def test_a_progress_file_caught_mid_write_is_no_progress(
    launcher: SageMakerLauncher, stubber: Stubber, objects: S3ObjectStore
) -> None:
    objects.put_bytes(f"{CHECKPOINTS}/progress/progress.json", b'{"status": "trai')
    stubber.add_response("describe_training_job", _described("InProgress", "Training"))
    assert launcher.describe(_job()).progress is None


def test_stop_stops_the_job(launcher: SageMakerLauncher, stubber: Stubber) -> None:
    stubber.add_response("stop_training_job", {}, {"TrainingJobName": JOB_NAME})
    launcher.stop(JOB_NAME)


def test_a_stop_still_throttled_after_the_retries_is_not_an_error(
    launcher: SageMakerLauncher, stubber: Stubber
) -> None:
    """A cancel answers 200 (never 500) when SageMaker keeps throttling the stop: the run is cancelled, and
    its execution's end (ABORTED) has the ExecutionEnded function stop the job again."""
    stubber.add_client_error(
        "stop_training_job", service_error_code="ThrottlingException", service_message="Rate exceeded",
        http_status_code=400, expected_params={"TrainingJobName": JOB_NAME},
    )  # fmt: skip
    launcher.stop(JOB_NAME)  # and no describe: the stubber refuses calls it was not given


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
    """RecordFailure after a failed create, or a cancel before the job was submitted: SageMaker answers
    ValidationException "Requested resource not found." (not the ResourceNotFound its model declares)."""
    stubber.add_client_error(
        "stop_training_job",
        service_error_code="ValidationException",
        service_message="Requested resource not found.",
        http_status_code=400,
        expected_params={"TrainingJobName": JOB_NAME},
    )
    launcher.stop(JOB_NAME)  # and no describe: the stubber refuses calls it was not given


def test_stopping_a_job_the_describe_cannot_find_is_not_an_error(
    launcher: SageMakerLauncher, stubber: Stubber
) -> None:
    stubber.add_client_error(
        "stop_training_job", service_error_code="ValidationException",
        service_message="Job cannot be stopped.", http_status_code=400,
    )  # fmt: skip
    stubber.add_client_error(
        "describe_training_job", service_error_code="ValidationException",
        service_message="Requested resource not found.", http_status_code=400,
    )  # fmt: skip
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
