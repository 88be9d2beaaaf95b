"""Uploads the compiled spec to Kubeflow Pipelines and schedules it (kfp.Client)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Callable

import kfp

from dcgan_kfp import backend_rules


class CronError(ValueError):
    """A cron expression the Kubeflow backend refuses, or reads other than a person means."""


def validate_cron(expression: str) -> str:
    """The backend's cron (robfig/cron v1.2.0): six fields, seconds first, or a descriptor
    (`@daily`, `@every 6h`, ...). The backend also accepts five fields, but reads them seconds
    first (`30 2 * * *` fires at minute 2 of every hour, second 30), so a five-field Unix
    expression is refused here with its six-field equivalent."""
    fields = expression.split()
    if len(fields) == 5 and not expression.startswith("@"):
        raise CronError(f"cron {expression!r} has 5 fields (Unix cron); Kubeflow reads six, "
                        f"seconds first: use {'0 ' + ' '.join(fields)!r}")
    try:
        backend_rules.parse_cron(expression.strip())
    except backend_rules.BackendRuleError as err:
        raise CronError(f"cron {expression!r}: {err} (six fields: second minute hour "
                        "day-of-month month day-of-week, e.g. '0 0 3 * * *'; or @daily, "
                        "@every 6h, ...)") from None
    return expression.strip() if expression.startswith("@") else " ".join(fields)


@dataclasses.dataclass(frozen=True)
class Submission:
    pipeline_id: str
    version_id: str
    experiment_id: str
    run_id: str  # Recurring-run id for `schedule`, run id for `run`.
    replaced: tuple[str, ...] = ()  # Recurring runs of the same name deleted by `schedule`.


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
    """Uploads the spec and creates the recurring run `<pipeline>-recurring`; any older recurring
    run of that name in the experiment is deleted once the new one exists, so exactly one
    schedule trains and pushes to the destination."""
    cron = validate_cron(cron)
    backend_rules.check_max_concurrency(max_concurrency)
    pipeline_id, version_id = upload(client, package_path, pipeline_name)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    job_name = f"{pipeline_name}-recurring"
    previous = recurring_runs_named(client, experiment_id, job_name)
    recurring = client.create_recurring_run(
        experiment_id=experiment_id, job_name=job_name,
        cron_expression=cron, max_concurrency=max_concurrency, no_catchup=not catchup,
        params=params, pipeline_id=pipeline_id, version_id=version_id,
        pipeline_root=pipeline_root)
    for run_id in previous:
        client.delete_recurring_run(run_id)
    return Submission(pipeline_id, version_id, experiment_id, recurring.recurring_run_id,
                      tuple(previous))


def recurring_runs_named(client: kfp.Client, experiment_id: str, name: str) -> list[str]:
    """Ids of the experiment's recurring runs with this display name (every page)."""
    name_filter = json.dumps({"predicates": [
        {"operation": "EQUALS", "key": "display_name", "stringValue": name}]})
    return [run.recurring_run_id for run in _pages(
        lambda token: client.list_recurring_runs(page_token=token, page_size=100,
                                                 experiment_id=experiment_id,
                                                 filter=name_filter),
        "recurring_runs") if run.display_name == name]


def _pages(list_page: Callable[[str], Any], field: str) -> list[Any]:
    items, token = [], ""
    while True:
        page = list_page(token)
        items += getattr(page, field) or []
        token = page.next_page_token
        if not token:
            return items


def run_once(client: kfp.Client, package_path: str, pipeline_name: str, experiment: str,
             params: dict[str, Any], pipeline_root: str,
             namespace: str | None = None) -> Submission:
    pipeline_id, version_id = upload(client, package_path, pipeline_name)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    run = client.run_pipeline(experiment_id=experiment_id, job_name=f"{pipeline_name}-run",
                              params=params, pipeline_id=pipeline_id, version_id=version_id,
                              pipeline_root=pipeline_root)
    return Submission(pipeline_id, version_id, experiment_id, run.run_id)
