"""`dcgan-kfp`: compile the pipeline for Kubeflow, schedule it as a recurring run, or run it once.

    dcgan-kfp compile --pipeline-root gs://BUCKET/dcgan --image IMAGE --output pipeline.yaml
    dcgan-kfp schedule --host https://KFP --cron '0 0 3 * * *' --pipeline-root ... --image ...
    dcgan-kfp run --host https://KFP --pipeline-root ... --image ...
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from typing import Sequence

import kfp

from kfp_server_api import ApiException

from dcgan_kfp import compiler, scheduler
from pipeline import pipeline as pipeline_def
from pipeline.config import PRESETS, preset


def _add_compile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline-name", default="dcgan-mnist",
                        help="Kubeflow pipeline name, [a-z0-9][a-z0-9-]* (default: %(default)s)")
    parser.add_argument("--pipeline-root", required=True,
                        help="remote root every component reads and writes (tf.io.gfile: gs://, "
                             "s3://, hdfs://): outputs, checkpoints, and serving/ by default")
    parser.add_argument("--image", required=True, help="the container image built from "
                                                       "kfp/Dockerfile")
    parser.add_argument("--serving-dir", default="",
                        help="push destination base; TF Serving watches <this>/<model name> "
                             "(default: <pipeline-root>/serving)")
    parser.add_argument("--mnist-dir", default="",
                        help="default of the `mnist_dir` runtime parameter (empty: "
                             "tensorflow-datasets download)")
    parser.add_argument("--beam-arg", action="append", default=[],
                        help="a Beam pipeline argument, repeatable (e.g. --beam-arg=--runner=DataflowRunner)")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--train-steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--strategy", help="tf.distribute strategy of the Trainer")
    parser.add_argument("--mixed-precision", metavar="POLICY",
                        help="the Trainer's precision policy (default auto: float32 on GPUs; "
                             "mixed_float16 for GPU trainers)")
    parser.add_argument("--enable-caching", action="store_true",
                        help="let Kubeflow reuse cached component outputs (off: every run "
                             "trains a new challenger)")
    defaults = compiler.Resources()
    for field in dataclasses.fields(compiler.Resources):
        parser.add_argument(f"--{field.name.replace('_', '-')}",
                            type=type(getattr(defaults, field.name)),
                            default=getattr(defaults, field.name))


def _config(args: argparse.Namespace):
    config = dataclasses.replace(
        preset(args.preset), pipeline_name=compiler.validate_name(args.pipeline_name),
        output_dir=args.pipeline_root.rstrip("/"), serving_base=args.serving_dir,
        mnist_dir=args.mnist_dir, enable_cache=args.enable_caching,
        beam_pipeline_args=tuple(args.beam_arg) or preset(args.preset).beam_pipeline_args)
    overrides = {k: v for k, v in (("train_steps", args.train_steps),
                                   ("batch_size", args.batch_size),
                                   ("strategy", args.strategy),
                                   ("mixed_precision", args.mixed_precision)) if v is not None}
    return config.replace_trainer(**overrides)


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
    compile_parser.add_argument("--output", default="pipeline.json",
                                help=".yaml: the bare PipelineSpec kfp.Client uploads; "
                                     ".json: Vertex's PipelineJob (default: %(default)s)")
    for name, text in (("schedule", "upload and create a recurring run"),
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
                             help="six fields, seconds first (robfig/cron), e.g. '0 0 3 * * *'")
            sub.add_argument("--max-concurrency", type=int, default=1)
            sub.add_argument("--catchup", action="store_true",
                             help="backfill missed intervals (default: no catch-up)")
    args = parser.parse_args(argv)
    if args.command != "compile" and not args.host:
        parser.error("--host (or $KF_PIPELINES_ENDPOINT) is required")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config, resources = _config(args), _resources(args)
        if args.command == "compile":
            path = compiler.compile_pipeline(config, args.image, args.output, resources)
            print(f"wrote {path}")
            return 0
        if args.command == "schedule":
            scheduler.validate_cron(args.cron)  # Before anything is compiled or sent.
        client = kfp.Client(host=args.host, namespace=args.namespace, existing_token=args.token)
        with tempfile.TemporaryDirectory() as tmp:
            package = compiler.compile_pipeline(config, args.image,
                                                os.path.join(tmp, "pipeline.yaml"), resources)
            params = _params(args.param)
            root = pipeline_def.pipeline_root(config)
            if args.command == "schedule":
                done = scheduler.schedule(client, package, config.pipeline_name, args.experiment,
                                          args.cron, params, root, args.max_concurrency,
                                          args.catchup, args.namespace)
                print(f"recurring run {done.run_id} (pipeline {done.pipeline_id}, version "
                      f"{done.version_id}, experiment {done.experiment_id})\n"
                      f"{args.host.rstrip('/')}/#/recurringruns/details/{done.run_id}")
            else:
                done = scheduler.run_once(client, package, config.pipeline_name, args.experiment,
                                          params, root, args.namespace)
                print(f"run {done.run_id} (pipeline {done.pipeline_id}, version "
                      f"{done.version_id})\n{args.host.rstrip('/')}/#/runs/details/{done.run_id}")
        return 0
    except (ValueError, scheduler.CronError) as err:
        print(f"dcgan-kfp: {err}", file=sys.stderr)
        return 2
    except ApiException as err:
        print(f"dcgan-kfp: the Kubeflow API refused the request: {err.status} {err.reason}: "
              f"{err.body}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
