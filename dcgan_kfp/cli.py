"""`dcgan-kfp`: compile the pipeline for Kubeflow, schedule it as a recurring run, run it once,
or execute the compiled spec on this machine the way the backend does.

    dcgan-kfp compile --pipeline-root gs://BUCKET/dcgan --image IMAGE --output pipeline.yaml
    dcgan-kfp schedule --host https://KFP --cron '0 0 3 * * *' --pipeline-root ... --image ...
    dcgan-kfp run --host https://KFP --pipeline-root ... --image ...
    dcgan-kfp local-run --pipeline-root runs/kfp-local --mnist-dir DIR [--docker IMAGE]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from typing import Sequence

import kfp
import urllib3
from kfp_server_api import ApiException

from components.atomic_pusher import is_object_store
from dcgan_kfp import backend_rules, compiler, entrypoint, local_run, scheduler
from pipeline import pipeline as pipeline_def
from dcgan_common.config import PipelineConfig
from pipeline.options import add_training_options, training_config
from pipeline.run_lock import OutputDirLocked, RunLock


LOCAL_IMAGE = "dcgan-mnist:local"  # What `make image` tags.


def _add_compile_options(parser: argparse.ArgumentParser, image_required: bool = True) -> None:
    parser.add_argument("--pipeline-name", default="dcgan-mnist",
                        help="Kubeflow pipeline name, [a-z0-9][a-z0-9-]* (default: %(default)s)")
    parser.add_argument("--pipeline-root", required=True,
                        help="remote root every component reads and writes (tf.io.gfile: gs://, "
                             "s3://): outputs, checkpoints, and serving/ by default")
    parser.add_argument("--image", required=image_required,
                        help="the container image built from kfp/Dockerfile")
    parser.add_argument("--serving-dir", default="",
                        help="push destination base; TF Serving watches <this>/<model name> "
                             "(default: <pipeline-root>/serving)")
    parser.add_argument("--mnist-dir", default="",
                        help="default of the `mnist_dir` runtime parameter (empty: "
                             "tensorflow-datasets download)")
    parser.add_argument("--beam-arg", action="append", default=[],
                        help="a Beam pipeline argument, repeatable (e.g. --beam-arg=--runner=DataflowRunner)")
    add_training_options(parser)
    parser.add_argument("--enable-caching", action="store_true",
                        help="let Kubeflow reuse cached component outputs (off: every run "
                             "trains a new challenger)")
    defaults = compiler.Resources()
    for field in dataclasses.fields(compiler.Resources):
        parser.add_argument(f"--{field.name.replace('_', '-')}",
                            type=type(getattr(defaults, field.name)),
                            default=getattr(defaults, field.name))


def _config(args: argparse.Namespace) -> PipelineConfig:
    """The preset with the command line's changes, resolved once per command."""
    config = training_config(
        args, pipeline_name=compiler.validate_name(args.pipeline_name),
        output_dir=args.pipeline_root.rstrip("/"), serving_base=args.serving_dir,
        mnist_dir=args.mnist_dir, enable_cache=args.enable_caching)
    if args.beam_arg:
        config = dataclasses.replace(config, beam_pipeline_args=tuple(args.beam_arg))
    return config


def _resources(args: argparse.Namespace) -> compiler.Resources:
    return compiler.Resources(**{f.name: getattr(args, f.name)
                                 for f in dataclasses.fields(compiler.Resources)})


def _params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"dcgan-kfp: --param {pair!r}: expected NAME=VALUE")
        name, value = pair.split("=", 1)
        params[name] = value
    return params


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dcgan-kfp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    compile_parser = commands.add_parser("compile", help="write the pipeline spec")
    _add_compile_options(compile_parser)
    compile_parser.add_argument("--output", default="pipeline.yaml",
                                help=".yaml: the bare PipelineSpec kfp.Client uploads (GPU type "
                                     f"default {compiler.KUBERNETES_GPU}); .json: Vertex AI's "
                                     f"PipelineJob (GPU type default {compiler.VERTEX_GPU}) "
                                     "(default: %(default)s)")
    for name, text in (("schedule", "upload and create (or replace) the recurring run"),
                       ("run", "upload and start one run")):
        sub = commands.add_parser(name, help=text)
        _add_compile_options(sub)
        sub.add_argument("--host", default=os.environ.get("KF_PIPELINES_ENDPOINT"),
                         help="Kubeflow Pipelines API address (default: $KF_PIPELINES_ENDPOINT)")
        sub.add_argument("--namespace", default=os.environ.get("KF_PIPELINES_NAMESPACE",
                                                               "kubeflow"))
        sub.add_argument("--token", default=os.environ.get("KF_PIPELINES_TOKEN"),
                         help="bearer token (default: $KF_PIPELINES_TOKEN)")
        sub.add_argument("--experiment", default="dcgan-mnist")
        sub.add_argument("--param", action="append", default=[],
                         help="a runtime parameter NAME=VALUE, repeatable (e.g. mnist_dir=gs://...)")
        if name == "schedule":
            sub.add_argument("--cron", required=True,
                             help="six fields, seconds first (robfig/cron), e.g. '0 0 3 * * *', "
                                  "or a descriptor: @daily, @every 6h, ...")
            sub.add_argument("--max-concurrency", type=int, default=1,
                             help="runs at once, 1-10 (default: %(default)s)")
            sub.add_argument("--catchup", action="store_true",
                             help="backfill missed intervals (default: no catch-up)")
    local = commands.add_parser("local-run", help="execute the compiled spec here, task by task")
    _add_compile_options(local, image_required=False)
    local.add_argument("--spec", help="a compiled .yaml to run (default: compile with the "
                                      "options above)")
    local.add_argument("--param", action="append", default=[],
                       help="a runtime parameter NAME=VALUE, repeatable")
    local.add_argument("--docker", metavar="IMAGE",
                       help="run each task in this image (pipeline root and local paths among "
                            "the parameters mounted at the same path)")
    local.add_argument("--log-dir", help="where each task's log goes (default: "
                                         "<pipeline-root>/logs)")
    args = parser.parse_args(argv)
    if args.command in ("schedule", "run") and not args.host:
        parser.error("--host (or $KF_PIPELINES_ENDPOINT) is required")
    return args


def _local_path(path: str) -> str:
    return path if not path or is_object_store(path) else os.path.abspath(path)


def _local_run(args: argparse.Namespace, config: PipelineConfig,
               resources: compiler.Resources) -> int:
    output_dir = config.output_dir
    remote = is_object_store(output_dir)
    if remote:  # The executor outputs are read from the object store.
        entrypoint.register_object_stores()
    log_dir = args.log_dir or (os.path.join("runs", "kfp-local", "logs") if remote
                               else os.path.join(output_dir, "logs"))
    if args.spec:
        spec = compiler.load_spec(args.spec)
        params = {compiler.MNIST_DIR_PARAMETER: config.mnist_dir} if config.mnist_dir else {}
    else:
        os.makedirs(log_dir, exist_ok=True)
        spec_path = os.path.join(log_dir, "pipeline.yaml")
        spec = compiler.compile_spec(config, args.docker or args.image or LOCAL_IMAGE, spec_path,
                                     resources, in_image=bool(args.docker))
        params = {}
        print(f"compiled {spec_path}")
    params.update(local_run.parse_parameters(spec, _params(args.param)))
    mounts = () if remote else (output_dir,)
    try:
        results = local_run.run_spec(spec, pipeline_def.pipeline_root(config), log_dir,
                                     params, args.docker, mounts)
    except local_run.TaskFailed as err:
        print(f"dcgan-kfp local-run: {err}\nnothing downstream of {err.task} ran; nothing "
              "was pushed", file=sys.stderr)
        return 1
    destination = local_run.pushed_destination(results)
    total = sum(r.seconds for r in results.values())
    print(f"all {len(results)} tasks succeeded in {total:.0f} s; " +
          (f"pushed {destination}" if destination else
           "nothing pushed (the Evaluator did not bless the generator)"))
    return 0


def _submit(args: argparse.Namespace, config: PipelineConfig,
            resources: compiler.Resources) -> int:
    """`run` and `schedule`: everything that can be refused locally is checked before the
    API server is contacted."""
    if args.command == "schedule":
        scheduler.validate_cron(args.cron)
        backend_rules.check_max_concurrency(args.max_concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        package = os.path.join(tmp, "pipeline.yaml")
        spec = compiler.compile_spec(config, args.image, package, resources)
        params = local_run.parse_parameters(spec, _params(args.param))
        backend_rules.check_run_parameters(spec, params)
        client = kfp.Client(host=args.host, namespace=args.namespace, existing_token=args.token)
        root = pipeline_def.pipeline_root(config)
        if args.command == "schedule":
            done = scheduler.schedule(client, package, config.pipeline_name, args.experiment,
                                      args.cron, params, root, args.max_concurrency,
                                      args.catchup, args.namespace)
            for old in done.replaced:
                print(f"replaced (deleted) the previous recurring run {old}")
            print(f"recurring run {done.run_id} (pipeline {done.pipeline_id}, version "
                  f"{done.version_id}, experiment {done.experiment_id})\n"
                  f"{args.host.rstrip('/')}/#/recurringruns/details/{done.run_id}")
        else:
            done = scheduler.run_once(client, package, config.pipeline_name, args.experiment,
                                      params, root, args.namespace)
            print(f"run {done.run_id} (pipeline {done.pipeline_id}, version "
                  f"{done.version_id})\n{args.host.rstrip('/')}/#/runs/details/{done.run_id}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # urllib3's retries end in one line below (kfp_server_api resets the `urllib3` logger).
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    code = _main(args)
    if args.command == "local-run" and is_object_store(args.pipeline_root):
        entrypoint.exit_now(code)  # tensorflow-io's s3 filesystem aborts the normal exit.
    return code


def _main(args: argparse.Namespace) -> int:
    try:
        if args.command == "local-run":  # Local paths as absolute ones: tasks run elsewhere.
            args.pipeline_root = _local_path(args.pipeline_root.rstrip("/"))
            args.mnist_dir = _local_path(args.mnist_dir)
        config, resources = _config(args), _resources(args)
        if args.command == "compile":
            compiler.compile_spec(config, args.image, args.output, resources)
            print(f"wrote {args.output}")
            return 0
        if args.command == "local-run":
            if is_object_store(config.output_dir):  # No locks there (pipeline/run_lock.py).
                return _local_run(args, config, resources)
            with RunLock(config.output_dir):
                return _local_run(args, config, resources)
        return _submit(args, config, resources)
    except (ValueError, OutputDirLocked) as err:  # Also CronError and BackendRuleError.
        print(f"dcgan-kfp: {err}", file=sys.stderr)
        return 2
    except ApiException as err:
        print(f"dcgan-kfp: the Kubeflow API at {args.host} refused the request: {err.status} "
              f"{err.reason}: {err.body}", file=sys.stderr)
        return 1
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
        reason = str(getattr(err, "reason", None) or err).split(">: ", 1)[-1]  # No object repr.
        print(f"dcgan-kfp: cannot reach the Kubeflow API at {args.host}: {reason}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
