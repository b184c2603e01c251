"""TrainingLauncher over SageMaker training jobs running the trainer image of training_image/."""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from tt_core.errors import RunStepError
from tt_core.models.workflow import TrainingState
from tt_core.observability import logger
from tt_core.ports import ObjectStore, TrainingJobSpec, TrainingJobStatus
from tt_core.runs.artifacts import EPOCH_INDEX_FILE, EPOCHS_FOLDER, parse_epoch_index

# SageMaker MetricDefinitions: the same regexes as tt_trainer.progress.METRIC_DEFINITIONS (tt_core may
# not import tt_trainer; a contract test keeps the two equal). Each matches only its own event's lines.
_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = tuple(
    {"Name": f"train:{key}", "Regex": rf'"event": "train_step".*"{key}": {_NUMBER}'}
    for key in ("loss", "learning_rate", "epoch", "step", "tokens_per_second", "token_accuracy")
) + tuple(
    {"Name": f"validation:{key}", "Regex": rf'"event": "validation".*"valid_{key}": {_NUMBER}'}
    for key in ("loss", "token_accuracy")
)
# Where the trainer writes checkpoints; SageMaker syncs the directory to CheckpointConfig.S3Uri.
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# The trainer mirrors its live progress under <checkpoint dir>/progress/ (training_image/README.md §5).
PROGRESS_OBJECT = "progress/progress.json"
TRAINING_LOG_OBJECT = "progress/training_log.jsonl"
EPOCH_INDEX_OBJECT = f"{EPOCHS_FOLDER}/{EPOCH_INDEX_FILE}"
# InProgress secondary statuses before the trainer runs: the run waits for training capacity.
QUEUED_SECONDARY_STATUSES = frozenset(
    {
        "Starting",
        "Pending",
        "LaunchingMLInstances",
        "PreparingTrainingStack",
        "Downloading",
        "DownloadingTrainingImage",
    }
)
_ENDED_STATUSES = frozenset({"Completed", "Failed", "Stopping", "Stopped"})

# The client's retries: standard mode retries throttling (ThrottlingException) and transient errors with
# exponential backoff and jitter. Five attempts in all wait at most 1 + 2 + 4 + 8 s: they fit in the API's
# 29 s (a cancel stops the job); what is still throttled after that is reported in the product's words.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})
# SageMaker's JSON protocol reports throttling as ThrottlingException; botocore's other throttling codes
# count too.
_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# A job that does not exist: SageMaker answers DescribeTrainingJob and StopTrainingJob with
# ValidationException "Requested resource not found." (the service model declares ResourceNotFound).
_MISSING_JOB = re.compile(r"not (?:be )?found|does not exist|could not find", re.IGNORECASE)
# ResourceLimitExceeded names the quota: "The account-level service limit 'ml.g5.xlarge for training job
# usage' is 0 Instances, with current utilization of 0 Instances and a request delta of 1 Instances. …"
_QUOTA_NAME = re.compile(r"limit '([A-Za-z0-9 ._()-]{1,100})'")
# Words a run's error may not contain (PRODUCT.md §9.8): a quota name with one of them is not quoted.
_PROVIDER_WORDS = re.compile(r"sagemaker|\baws\b|\bec2\b|s3://|amazon", re.IGNORECASE)
# FailureReason of a job that got no instance: "CapacityError: Unable to provision requested ML compute
# capacity. …" (InsufficientCapacityError / InsufficientInstanceCapacity in some of its wordings).
_CAPACITY_FAILURE = re.compile(r"CapacityError|InsufficientInstanceCapacity|Insufficient capacity", re.I)
_BUSY = "the training service is busy (too many requests)"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _is_throttled(error: ClientError) -> bool:
    return _error_code(error) in _THROTTLING_CODES


def _is_missing_job(error: ClientError) -> bool:
    code = _error_code(error)
    return code == "ResourceNotFound" or (
        code == "ValidationException" and bool(_MISSING_JOB.search(_error_message(error)))
    )


def quota_exceeded_message(error: ClientError, instance_type: str, *, spot: bool) -> str:
    """ResourceLimitExceeded at CreateTrainingJob → the run's error (PRODUCT.md §9.2: a remedy, no
    provider names). The README's deploy section says where the operator raises the quota."""
    match = _QUOTA_NAME.search(_error_message(error))
    quota = match.group(1) if match and not _PROVIDER_WORDS.search(match.group(1)) else None
    if quota is None or instance_type in quota:
        usage = "spot training job usage" if spot else "training job usage"
        quota = quota or f"{instance_type} for {usage}"
        return (
            f"Training capacity for {instance_type} is not available in this account: the training instance "
            f"quota '{quota}' is too low. Ask your operator to request a quota increase or to choose another "
            "instance type, then start the run again."
        )
    return (
        f"Training could not start: the account's training quota '{quota}' is used up. Wait for other "
        "training to finish or ask your operator to request a quota increase, then start the run again."
    )


def capacity_failure_reason(instance_type: str) -> str:
    """A job that ended without getting an instance (CapacityError) → the rest of "Training failed: …"."""
    return (
        f"no {instance_type} training machine was available. Start the run again later, or ask your "
        "operator to choose another instance type."
    )


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


class SageMakerLauncher:
    """Starts, follows and stops `tt-…` training jobs; live progress comes from the checkpoint sync."""

    def __init__(
        self,
        client: Any,
        objects: ObjectStore,
        *,
        bucket: str,
        image_uri: str,
        role_arn: str,
        volume_gb: int = 50,
    ) -> None:
        self._client = client
        self._objects = objects
        self._bucket = bucket
        self._image_uri = image_uri
        self._role_arn = role_arn
        self._volume_gb = volume_gb

    def _s3_uri(self, prefix: str) -> str:
        return f"s3://{self._bucket}/{prefix}"

    def create_request(self, job: TrainingJobSpec) -> dict[str, Any]:
        """The CreateTrainingJob request for a job (training_image/README.md: channels, hyperparameters)."""
        stopping: dict[str, int] = {"MaxRuntimeInSeconds": job.max_runtime_seconds}
        if job.use_spot:
            # Waiting for spot capacity counts against the same budget: the run times out either way.
            stopping["MaxWaitTimeInSeconds"] = job.max_runtime_seconds
        return {
            "TrainingJobName": job.job_name,
            "HyperParameters": dict(job.hyperparameters),
            "AlgorithmSpecification": {
                "TrainingImage": self._image_uri,
                "TrainingInputMode": "File",
                "MetricDefinitions": [dict(metric) for metric in METRIC_DEFINITIONS],
            },
            "RoleArn": self._role_arn,
            "InputDataConfig": [
                {
                    "ChannelName": name,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": self._s3_uri(prefix),
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
                for name, prefix in job.channels.items()
            ],
            "OutputDataConfig": {"S3OutputPath": self._s3_uri(job.output_prefix)},
            "ResourceConfig": {
                "InstanceType": job.instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": self._volume_gb,
            },
            "StoppingCondition": stopping,
            "EnableManagedSpotTraining": job.use_spot,
            "CheckpointConfig": {
                "S3Uri": self._s3_uri(job.checkpoint_prefix),
                "LocalPath": CHECKPOINT_LOCAL_PATH,
            },
        }

    def start(self, job: TrainingJobSpec) -> None:
        try:
            self._client.create_training_job(**self.create_request(job))
        except ClientError as error:
            code = _error_code(error)
            # The job exists already: StartTraining was retried after its first call got through.
            if code == "ResourceInUse":
                return
            if code == "ResourceLimitExceeded":
                raise RunStepError(
                    quota_exceeded_message(error, job.instance_type, spot=job.use_spot)
                ) from error
            if _is_throttled(error):  # still throttled after the client's retries
                raise RunStepError(
                    f"Training could not start: {_BUSY}. Start the run again in a few minutes."
                ) from error
            raise

    def describe(self, job: TrainingJobSpec) -> TrainingJobStatus:
        try:
            response = self._client.describe_training_job(TrainingJobName=job.job_name)
        except ClientError as error:
            if _is_missing_job(error):
                # Created once (StartTraining succeeded) and gone now: nothing will ever train it.
                return TrainingJobStatus(
                    state="failed", failure_reason="the training job no longer exists. Start the run again."
                )
            if _is_throttled(error):
                raise RunStepError(
                    f"Training progress could not be read: {_BUSY}. Start the run again in a few minutes."
                ) from error
            raise
        reason = response.get("FailureReason")
        if reason and _CAPACITY_FAILURE.search(reason):
            reason = capacity_failure_reason(job.instance_type)
        return TrainingJobStatus(
            state=training_state(response["TrainingJobStatus"], response.get("SecondaryStatus")),
            failure_reason=reason,
            progress=self._progress(job),
            log=self._log(job),
            epoch_index=parse_epoch_index(self._read(_join(job.checkpoint_prefix, EPOCH_INDEX_OBJECT))),
        )

    def stop(self, job_name: str) -> None:
        try:
            self._client.stop_training_job(TrainingJobName=job_name)
        except ClientError as error:
            # Never created (its create failed, or the run was cancelled before it was submitted): there is
            # nothing to stop, so RecordFailure and a cancel in that window succeed.
            if _is_missing_job(error):
                return
            # Still throttled after the client's retries: the run has already ended (cancelled or failed),
            # and its execution's end makes the ExecutionEnded function stop the job again, later
            # (services/execution_ended.py); the job's MaxRuntime bounds it in any case. Raising here would
            # answer a cancel with 500 after the run was cancelled.
            if _is_throttled(error):
                logger.warning(
                    "Training job stop throttled; left to the execution-ended stop", extra={"job": job_name}
                )
                return
            # SageMaker refuses to stop a job that has ended; any other refusal is a real error.
            if _error_code(error) != "ValidationException" or not self._has_ended(job_name):
                raise

    def discard(self, job_name: str) -> None:
        """Nothing to remove: the job's outputs and checkpoints are stored under its run's prefix, which the
        run's deletion empties; the instance and its volume go when the job ends; a job's record cannot be
        deleted, and it holds names and settings, not the rows."""
        return None

    def _has_ended(self, job_name: str) -> bool:
        """Whether there is nothing left to stop: the job ended, or does not exist."""
        try:
            response = self._client.describe_training_job(TrainingJobName=job_name)
        except ClientError as error:
            return _is_missing_job(error)
        return response["TrainingJobStatus"] in _ENDED_STATUSES

    def _progress(self, job: TrainingJobSpec) -> dict[str, Any] | None:
        body = self._read(_join(job.checkpoint_prefix, PROGRESS_OBJECT))
        if body is None:
            return None
        try:
            progress = json.loads(body)
        except ValueError:
            return None  # caught mid-sync: the next poll reads the complete file
        return progress if isinstance(progress, dict) else None

    def _log(self, job: TrainingJobSpec) -> list[dict[str, Any]]:
        body = self._read(_join(job.checkpoint_prefix, TRAINING_LOG_OBJECT))
        if body is None:
            return []
        entries = []
        for line in body.decode("utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a blank or torn (half-written) last line
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def _read(self, key: str) -> bytes | None:
        if self._objects.size(key) is None:
            return None
        return self._objects.get_bytes(key)


def training_state(status: str, secondary_status: str | None) -> TrainingState:
    """SageMaker's TrainingJobStatus (and SecondaryStatus) → the launcher's state."""
    if status == "InProgress":
        return "queued" if secondary_status in QUEUED_SECONDARY_STATUSES else "running"
    if status == "Completed":
        return "completed"
    if status == "Failed":
        return "failed"
    if status in ("Stopping", "Stopped"):
        return "stopped"
    raise ValueError(f"unknown training job status {status!r}")
