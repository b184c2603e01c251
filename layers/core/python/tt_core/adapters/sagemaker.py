"""TrainingLauncher over SageMaker training jobs running the trainer image of training_image/."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from tt_core.models.workflow import TrainingState
from tt_core.ports import ObjectStore, TrainingJobSpec, TrainingJobStatus

# SageMaker MetricDefinitions: the same regexes as tt_trainer.progress.METRIC_DEFINITIONS (tt_core may
# not import tt_trainer; a contract test keeps the two equal). Each matches only train_step lines.
_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = tuple(
    {"Name": f"train:{key}", "Regex": rf'"event": "train_step".*"{key}": {_NUMBER}'}
    for key in ("loss", "learning_rate", "epoch", "step", "tokens_per_second")
)
# Where the trainer writes checkpoints; SageMaker syncs the directory to CheckpointConfig.S3Uri.
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# The trainer mirrors its live progress under <checkpoint dir>/progress/ (training_image/README.md §5).
PROGRESS_OBJECT = "progress/progress.json"
TRAINING_LOG_OBJECT = "progress/training_log.jsonl"
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


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


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
            # The job exists already: StartTraining was retried after its first call got through.
            if _error_code(error) != "ResourceInUse":
                raise

    def describe(self, job: TrainingJobSpec) -> TrainingJobStatus:
        response = self._client.describe_training_job(TrainingJobName=job.job_name)
        return TrainingJobStatus(
            state=training_state(response["TrainingJobStatus"], response.get("SecondaryStatus")),
            failure_reason=response.get("FailureReason"),
            progress=self._progress(job),
            log=self._log(job),
        )

    def stop(self, job_name: str) -> None:
        try:
            self._client.stop_training_job(TrainingJobName=job_name)
        except ClientError as error:
            code = _error_code(error)
            # Never created (cancelled before it was submitted): there is nothing to stop.
            if code == "ResourceNotFound":
                return
            # SageMaker refuses to stop a job that has ended; any other refusal is a real error.
            if code != "ValidationException" or not self._has_ended(job_name):
                raise

    def discard(self, job_name: str) -> None:
        """Nothing to remove: the job's outputs and checkpoints are stored under its run's prefix, which the
        run's deletion empties; the instance and its volume go when the job ends; a job's record cannot be
        deleted, and it holds names and settings, not the rows."""
        return None

    def _has_ended(self, job_name: str) -> bool:
        try:
            response = self._client.describe_training_job(TrainingJobName=job_name)
        except ClientError:
            return False
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
