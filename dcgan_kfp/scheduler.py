"""Uploads the compiled spec to Kubeflow Pipelines and schedules it (kfp.Client)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import kfp


class CronError(ValueError):
    """Not a six-field (seconds first) cron expression, as the Kubeflow backend reads cron."""


def validate_cron(expression: str) -> str:
    """Kubeflow's scheduler uses robfig/cron with seconds: six fields, seconds first."""
    fields = expression.split()
    if len(fields) == 5:
        raise CronError(f"cron {expression!r} has 5 fields (Unix cron); Kubeflow reads six, "
                        f"seconds first: use {'0 ' + ' '.join(fields)!r}")
    if len(fields) != 6:
        raise CronError(f"cron {expression!r} has {len(fields)} fields; Kubeflow needs six "
                        "(second minute hour day-of-month month day-of-week), e.g. '0 0 3 * * *'")
    return " ".join(fields)


@dataclasses.dataclass(frozen=True)
class Submission:
    pipeline_id: str
    version_id: str
    experiment_id: str
    run_id: str  # Recurring-run id for `schedule`, run id for `run`.


def upload(client: kfp.Client, package_path: str, pipeline_name: str) -> tuple[str, str]:
    """A new pipeline, or a new version of the existing one of that name: (pipeline, version)."""
    pipeline_id = client.get_pipeline_id(pipeline_name)
    version_name = f"{pipeline_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if pipeline_id is None:
        pipeline = client.upload_pipeline(package_path, pipeline_name=pipeline_name)
        pipeline_id = pipeline.pipeline_id
        versions = client.list_pipeline_versions(pipeline_id).pipeline_versions
        return pipeline_id, versions[0].pipeline_version_id
    version = client.upload_pipeline_version(package_path, pipeline_version_name=version_name,
                                             pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id


def schedule(client: kfp.Client, package_path: str, pipeline_name: str, experiment: str,
             cron: str, params: dict[str, Any], pipeline_root: str, max_concurrency: int = 1,
             catchup: bool = False, namespace: str | None = None) -> Submission:
    cron = validate_cron(cron)
    if max_concurrency < 1:
        raise ValueError(f"max concurrency must be >= 1, got {max_concurrency}")
    pipeline_id, version_id = upload(client, package_path, pipeline_name)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    recurring = client.create_recurring_run(
        experiment_id=experiment_id, job_name=f"{pipeline_name}-recurring",
        cron_expression=cron, max_concurrency=max_concurrency, no_catchup=not catchup,
        params=params, pipeline_id=pipeline_id, version_id=version_id,
        pipeline_root=pipeline_root)
    return Submission(pipeline_id, version_id, experiment_id, recurring.recurring_run_id)


def run_once(client: kfp.Client, package_path: str, pipeline_name: str, experiment: str,
             params: dict[str, Any], pipeline_root: str,
             namespace: str | None = None) -> Submission:
    pipeline_id, version_id = upload(client, package_path, pipeline_name)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    run = client.run_pipeline(experiment_id=experiment_id, job_name=f"{pipeline_name}-run",
                              params=params, pipeline_id=pipeline_id, version_id=version_id,
                              pipeline_root=pipeline_root)
    return Submission(pipeline_id, version_id, experiment_id, run.run_id)
