"""What the open-source Kubeflow Pipelines 2.x backend refuses, as its own source checks it.

No Kubeflow backend runs here, so the compiler, the scheduler and the test server all check the
same rules, each copied in meaning (not in code) from the system that enforces it:

- task names: the backend turns every task of the root DAG into an Argo DAG task of the same
  name plus a `<task>-driver` twin (kubeflow/pipelines backend/src/v2/compiler/argocompiler/
  dag.go), and Argo refuses a task or template name that does not match
  `^[a-zA-Z0-9][-a-zA-Z0-9]*$` or is longer than 128 characters (argoproj/argo-workflows
  pkg/apis/workflow/v1alpha1/validation_utils.go: "name must consist of alpha-numeric characters
  or '-', and must start with an alpha-numeric character");
- run parameters: backend/src/apiserver/template/v2_template.go, validatePipelineJobInputs
  (kfp 2.5.0's texts, in its order);
- where each rule bites (backend/src/apiserver/resource/resource_manager.go): parameters are
  checked when a run or a recurring run is created (HTTP 400); Argo's names only when a run's
  workflow is validated (CreateRun: HTTP 500 "Failed to validate workflow for (...)"). A
  recurring run with a bad name is accepted, and then every firing fails in the
  scheduled-workflow controller: `dcgan-kfp` checks names before it sends anything;
- max concurrency: backend/src/apiserver/server/api_converter.go ("Max concurrency of a
  recurring run must be at least 1 and at most 10");
- cron: the same file parses the schedule with github.com/robfig/cron v1.2.0 `cron.Parse`
  (seconds first, day of week optional, descriptors); `parse_cron` reads it the same way.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from kfp.pipeline_spec import pipeline_spec_pb2

ARGO_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]*")
ARGO_NAME_MAX_LENGTH = 128
DRIVER_SUFFIX = "-driver"
MAX_CONCURRENCY = range(1, 11)


class BackendRuleError(ValueError):
    """Something the Kubeflow backend (or Argo, behind it) refuses."""


def name_errors(spec: pipeline_spec_pb2.PipelineSpec) -> list[str]:
    """Every task or DAG-component name of the spec that Argo would refuse, with the reason."""
    errors = []
    names = [(f"task {name!r}", name + DRIVER_SUFFIX) for name in spec.root.dag.tasks]
    names += [(f"component {name!r}", name) for name, component in spec.components.items()
              if component.HasField("dag")]  # DAG components become Argo templates.
    for what, argo_name in names:
        if not ARGO_NAME.fullmatch(argo_name):
            errors.append(f"{what}: Argo name {argo_name!r} must consist of alpha-numeric "
                          "characters or '-', and must start with an alpha-numeric character")
        elif len(argo_name) > ARGO_NAME_MAX_LENGTH:
            errors.append(f"{what}: Argo name {argo_name!r} is longer than "
                          f"{ARGO_NAME_MAX_LENGTH} characters")
    return errors


def check_names(spec: pipeline_spec_pb2.PipelineSpec) -> None:
    errors = name_errors(spec)
    if errors:
        raise BackendRuleError("the Kubeflow backend would refuse this spec: " + "; ".join(errors))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_PARAMETER_TYPE = pipeline_spec_pb2.ParameterType
# v2_template.go: per declared type, the structpb kind a value must have and the refusal.
_TYPE_CHECKS = {
    _PARAMETER_TYPE.NUMBER_DOUBLE: (_is_number, "double or integer, but the parameter value is "
                                    "not of number value type"),
    _PARAMETER_TYPE.NUMBER_INTEGER: (_is_number, "double or integer, but the parameter value is "
                                     "not of number value type"),
    _PARAMETER_TYPE.STRING: (lambda v: isinstance(v, str), "string, but the input parameter is "
                             "not of string value type"),
    _PARAMETER_TYPE.BOOLEAN: (lambda v: isinstance(v, bool), "bool, but the input parameter is "
                              "not of bool value type"),
    _PARAMETER_TYPE.LIST: (lambda v: isinstance(v, list), "list, but the input parameter is not "
                           "of list value type"),
    _PARAMETER_TYPE.STRUCT: (lambda v: isinstance(v, dict), "struct, but the input parameter is "
                             "not of struct value type"),
}


def check_run_parameters(spec: pipeline_spec_pb2.PipelineSpec, params: Mapping[str, Any]) -> None:
    """A run's parameters as the API server validates them when a run or a recurring run is
    created (v2_template.go validatePipelineJobInputs, its texts and its order): each declared
    parameter has a value, a default or is optional, and a value of its type; then no extra
    parameter."""
    declared = spec.root.input_definitions.parameters
    for name, param in sorted(declared.items()):
        if name not in params:
            if not param.is_optional and not param.HasField("default_value"):
                raise BackendRuleError(f"parameter {name} is not optional, yet has neither "
                                       "default value nor user provided value")
            continue
        if param.parameter_type == _PARAMETER_TYPE.PARAMETER_TYPE_ENUM_UNSPECIFIED:
            raise BackendRuleError(f"input parameter {name} has unspecified type")
        if param.parameter_type == _PARAMETER_TYPE.TASK_FINAL_STATUS:
            raise BackendRuleError(f"input parameter {name} requires type TASK_FINAL_STATUS, "
                                   "which is invalid for root component")
        check, refusal = _TYPE_CHECKS.get(param.parameter_type, (None, "unknown"))
        if check is None or not check(params[name]):
            raise BackendRuleError(f"input parameter {name} requires type {refusal}")
    extra = sorted(set(params) - set(declared))
    if extra:
        raise BackendRuleError(
            f"parameter(s) provided are not required by pipeline: {', '.join(extra)}")


def check_max_concurrency(value: int) -> int:
    if value not in MAX_CONCURRENCY:
        raise BackendRuleError("Max concurrency of a recurring run must be at least "
                               f"{MAX_CONCURRENCY.start} and at most {MAX_CONCURRENCY.stop - 1}. "
                               f"Received {value}")
    return value


# robfig/cron v1.2.0, spec.go: the bounds of each field and the names it accepts.
_MONTHS = {m: i + 1 for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
CRON_FIELDS = (("second", 0, 59, {}), ("minute", 0, 59, {}), ("hour", 0, 23, {}),
               ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS),
               ("day of week", 0, 6, _DAYS))
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                    "@hourly")
# Go's time.ParseDuration, which `@every <duration>` uses.
_GO_DURATION = re.compile(r"[-+]?(0|((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)")
_INT = re.compile(r"[+-]?\d+")  # strconv.Atoi


def _cron_value(text: str, names: dict[str, int], expr: str) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not _INT.fullmatch(text):
        raise BackendRuleError(f"Failed to parse int from {text}: {expr}")
    value = int(text)
    if value < 0:
        raise BackendRuleError(f"Negative number ({value}) not allowed: {expr}")
    return value


def _cron_range(expr: str, low: int, high: int, names: dict[str, int]) -> None:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if low_and_high[0] in ("*", "?"):
        start, end = low, high
    else:
        start = _cron_value(low_and_high[0], names, expr)
        if len(low_and_high) > 2:
            raise BackendRuleError(f"Too many hyphens: {expr}")
        end = _cron_value(low_and_high[1], names, expr) if len(low_and_high) == 2 else start
    if len(range_and_step) > 2:
        raise BackendRuleError(f"Too many slashes: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _cron_value(range_and_step[1], {}, expr)
        if len(low_and_high) == 1:
            end = high
    if start < low:
        raise BackendRuleError(f"Beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise BackendRuleError(f"End of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise BackendRuleError(f"Beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise BackendRuleError(f"Step of range should be a positive number: {expr}")


def parse_cron(spec: str) -> list[str]:
    """robfig/cron v1.2.0 `cron.Parse`: raises what it would refuse; returns the six fields
    (a five-field spec gets the day of week `*`, a descriptor returns itself)."""
    if not spec:
        raise BackendRuleError("Empty spec string")
    if spec.startswith("@"):
        if spec in CRON_DESCRIPTORS:
            return [spec]
        if spec.startswith("@every "):
            if not _GO_DURATION.fullmatch(spec[len("@every "):]):
                raise BackendRuleError(f"Failed to parse duration {spec}")
            return [spec]
        raise BackendRuleError(f"Unrecognized descriptor: {spec}")
    fields = spec.split()
    if not 5 <= len(fields) <= 6:
        raise BackendRuleError(f"Expected 5 to 6 fields, found {len(fields)}: {spec}")
    fields = fields + ["*"] * (6 - len(fields))
    for text, (_, low, high, names) in zip(fields, CRON_FIELDS):
        for expr in filter(None, text.split(",")):
            _cron_range(expr, low, high, names)
    return fields
