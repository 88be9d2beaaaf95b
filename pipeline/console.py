"""`dcgan-pipeline`: the local pipeline, with a terminal a person reads.

The terminal gets one line per component when it starts and when it ends (its duration, or
CACHED), the Trainer's progress every tenth of its steps (images/s, time left), the Evaluator's
numbers beside their floor, where everything is, and the verdict last. Everything else (TFX's
protobuf dumps, absl, TensorFlow's C++ start-up lines, Beam) goes to a log file under the output
directory, whose path is printed. `--verbose` shows everything on the terminal.

This module imports nothing heavy before the output is redirected, so TensorFlow's start-up
lines land in the log file too.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import time
from typing import Any, Sequence, TextIO

from absl import logging as absl_logging

from dcgan_common.config import PipelineConfig
from pipeline.options import add_training_options, training_config
from pipeline.run_lock import OutputDirLocked, RunLock

LOG_DIR = "logs"
PROGRESS_LOGGERS = ("trainer.train_loop", "trainer.classifier",
                    "components.sample_quality_evaluator")
PROJECT_PACKAGES = ("components", "dcgan_common", "pipeline", "serving", "trainer")
TRAINER_PROGRESS_LINES = 10  # At most this many training lines on the terminal.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dcgan-pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", ""),
                        help="directory with the four MNIST IDX files (default: $MNIST_DIR; "
                             "empty: download with tensorflow-datasets)")
    parser.add_argument("--output-dir", default="runs/local",
                        help="pipeline root, metadata and serving destination (default: %(default)s)")
    add_training_options(parser)
    parser.add_argument("--verbose", action="store_true",
                        help="everything on the terminal (TFX, absl, TensorFlow), tracebacks too")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    if args.mnist_dir and not os.path.isdir(args.mnist_dir):
        raise SystemExit(f"dcgan-pipeline: --mnist-dir {args.mnist_dir}: not a directory")
    return training_config(args, mnist_dir=args.mnist_dir,
                           output_dir=os.path.abspath(args.output_dir))


class Progress(logging.Handler):
    """Turns the log records a person wants into terminal lines."""

    def __init__(self, terminal: TextIO):
        super().__init__(logging.INFO)
        self.terminal = terminal
        self.component: str | None = None
        self.started = 0.0
        self.cached = False
        self.train_tenths = -1

    def say(self, text: str) -> None:
        self.terminal.write(text + "\n")
        self.terminal.flush()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Component %s is running.":  # tfx/orchestration/local/local_dag_runner.py
            self.component, self.started, self.cached = record.args[0], time.perf_counter(), False
            self.say(f"{self.component:<24} running")
        elif record.msg == "Component %s is finished.":
            seconds = time.perf_counter() - self.started
            self.say(f"{record.args[0]:<24} " + ("CACHED" if self.cached else
                                                  f"done in {seconds:.0f} s"))
            self.component = None
        elif record.msg == "A cached execution %d is used.":  # tfx/orchestration/portable/launcher.py
            self.cached = True
        elif record.name in PROGRESS_LOGGERS:
            self.progress(record)

    def progress(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("step %d/%d"):
            step, total = record.args[0], record.args[1]
            tenths = step * TRAINER_PROGRESS_LINES // total
            if tenths == self.train_tenths:
                return
            self.train_tenths = tenths
        self.say("  " + record.getMessage())


def open_log(output_dir: str) -> str:
    """Creates the output and log directories and the log file; raises OSError if it cannot."""
    log_dir = os.path.join(output_dir, LOG_DIR)
    os.makedirs(log_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = os.path.join(log_dir, f"dcgan-pipeline-{stamp}.log")
    with open(log_path, "a", encoding="utf-8"):
        pass
    return log_path


def redirect_output(log_path: str) -> TextIO:
    """Points file descriptors 1 and 2 (Python, absl, TensorFlow's C++ logging, Beam) at the
    log file; returns a stream to the terminal."""
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return terminal


def reported_error(error: BaseException) -> BaseException:
    """What is wrong, out of TFX's wrapping: the outermost error the project raised (it names
    the problem and the fix, while its cause holds the library's detail), else the innermost."""
    chain = [error]
    while chain[-1].__cause__ is not None or (chain[-1].__context__ is not None
                                              and not chain[-1].__suppress_context__):
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    ours = [e for e in chain if type(e).__module__.split(".")[0] in PROJECT_PACKAGES]
    return ours[0] if ours else chain[-1]


def summary_lines(summary: dict[str, Any], config: PipelineConfig, log_path: str) -> list[str]:
    from pipeline import local_runner  # pylint: disable=import-outside-toplevel
    metrics, floor = summary["quality_metrics"] or {}, summary["real_data_floor"] or {}
    lines = []
    if metrics:
        lines.append(f"FID {metrics['fid']:.2f} (real-data floor {floor.get('fid', 0):.2f}), "
                     f"MNIST score {metrics['mnist_score']:.2f} (floor "
                     f"{floor.get('mnist_score', 0):.2f}), classes {metrics['classes_covered']}, "
                     f"shares {metrics['min_class_share']:.1%}-{metrics['max_class_share']:.1%}")
    lines += [
        f"pushed generator:  {summary['pushed_model'] if summary['pushed'] else 'nothing pushed'}",
        f"final sample grid: {summary['final_sample_grid']}",
        f"TensorBoard:       tensorboard --logdir {summary['tensorboard_logs']}",
        f"run summary:       {os.path.join(config.output_dir, local_runner.SUMMARY_FILE)}",
        f"full log:          {log_path}",
        f"wall time {summary['wall_time_s']:.0f} s",
        "Verdict: " + f"{summary['verdict']}" + "".join(
            f"\n  - {reason}" for reason in summary["verdict_reasons"] or []),
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    output_dir = os.path.abspath(args.output_dir)
    try:
        config = config_from_args(args)  # Bad settings: refused before anything runs.
        with RunLock(output_dir) as lock:  # A live run on this directory: refused here.
            return _run(args, config, output_dir, lock.took_over)
    except (ValueError, OutputDirLocked) as err:
        print(f"dcgan-pipeline: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"dcgan-pipeline: --output-dir {args.output_dir}: {err.strerror}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, config: PipelineConfig, output_dir: str,
         took_over: dict[str, Any] | None) -> int:
    """The run, holding its output directory; returns the exit code."""
    log_path = open_log(output_dir)  # Missing or unwritable: OSError, refused by main.
    terminal = sys.stdout if args.verbose else redirect_output(log_path)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(logging.INFO)
    # TFX logs through absl; TensorFlow's SavedModel export silences absl for a moment and then
    # restores absl's own verbosity setting (WARNING unless set), which would hide the rest.
    absl_logging.set_verbosity(absl_logging.INFO)
    progress = Progress(terminal)
    if not args.verbose:
        logging.getLogger().addHandler(progress)
    progress.say(f"dcgan-pipeline: preset {args.preset}, output {output_dir}\n"
                 f"full log: {log_path}")
    if took_over:
        progress.say(f"taking over {output_dir}: the run that held it (pid "
                     f"{took_over.get('pid')}, started {took_over.get('started')}) is no longer "
                     "running")
    from pipeline import local_runner  # pylint: disable=import-outside-toplevel
    try:
        summary = local_runner.run(config)
    except Exception as error:  # pylint: disable=broad-except
        if args.verbose:
            raise
        cause = reported_error(error)
        logging.exception("the run failed")  # The traceback, in the log file.
        progress.say(f"{progress.component or 'the pipeline'} FAILED: {cause}\n"
                     f"full log (with the traceback): {log_path}")
        return 1
    for line in summary_lines(summary, config, log_path):
        progress.say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
