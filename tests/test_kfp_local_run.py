"""`dcgan-kfp local-run`: the smoke preset's compiled spec, executed task by task from the spec's
own commands (TFX's Kubeflow V2 entrypoint, wrapped by dcgan_kfp/entrypoint.py) on the
committed MNIST slice."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from dcgan_kfp import cli, compiler, local_run

ENTRYPOINT = ["python", "-m", "dcgan_kfp.entrypoint"]  # TFX's, with object stores.


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("kfp-local"))
    code = cli.main(["local-run", "--pipeline-root", root, "--preset", "smoke", "--mnist-dir",
                     os.path.join(os.path.dirname(__file__), "data", "mnist_slice")])
    (run_dir,) = glob.glob(os.path.join(root, "logs", "dcgan-mnist-*"))
    with open(os.path.join(run_dir, local_run.RUN_RECORD)) as f:
        record = json.load(f)
    return {"code": code, "root": root, "run_dir": run_dir, "record": record,
            "spec": compiler.load_spec(os.path.join(root, "logs", "pipeline.yaml"))}


def test_every_task_ran_from_the_specs_own_command(local):
    assert local["code"] == 0
    spec, record = local["spec"], local["record"]
    assert [r["task"] for r in record] == local_run.task_order(spec.root.dag)
    assert {r["task"] for r in record} == set(spec.root.dag.tasks)
    for entry in record:
        assert entry["returncode"] == 0, entry
        container = local_run.task_container(spec, entry["task"])
        assert list(container.command) == ENTRYPOINT
        command = entry["command"]
        assert command[:3] == ENTRYPOINT
        # The spec's arguments, with only the executor-input placeholder {{$}} resolved.
        resolved = [i for i, arg in enumerate(container.args) if arg == "{{$}}"]
        assert len(resolved) == 1 and len(command) == 3 + len(container.args)
        for i, arg in enumerate(container.args):
            if i not in resolved:
                assert command[3 + i] == arg
        executor_input = json.loads(command[3 + resolved[0]])
        for artifacts in executor_input["outputs"].get("artifacts", {}).values():
            for artifact in artifacts["artifacts"]:
                assert artifact["uri"].startswith(os.path.join(local["root"], "pipeline_root"))


def executor_input(command):
    return json.loads(command[command.index("--json_serialized_invocation_args") + 1])


def test_downstream_tasks_received_the_upstream_artifacts(local):
    by_task = {r["task"]: executor_input(r["command"]) for r in local["record"]}
    example_gen = by_task["MnistExampleGen"]["outputs"]["artifacts"]["examples"]["artifacts"][0]
    statistics = by_task["StatisticsGen"]["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert statistics["uri"] == example_gen["uri"]
    assert json.loads(statistics["metadata"]["split_names"]) == ["train", "eval"]
    assert by_task["MnistExampleGen"]["inputs"]["parameterValues"]["mnist_dir"].endswith(
        "mnist_slice")


def test_a_numeric_version_was_pushed_and_serves_images(local):
    serving = os.path.join(local["root"], "serving", "dcgan_mnist")
    (version,) = os.listdir(serving)
    assert version.isdigit()
    generator = tf.saved_model.load(os.path.join(serving, version))
    z = tf.random.stateless_normal([3, 100], seed=[1, 2])
    images = generator.signatures["serving_default"](z=z)["images"].numpy()
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.uint8
    assert images.std() > 0  # Not a constant picture.


def test_a_failing_task_is_named_with_its_log_and_nothing_is_pushed(local, tmp_path, capsys):
    code = cli.main(["local-run", "--pipeline-root", str(tmp_path), "--spec",
                     os.path.join(local["root"], "logs", "pipeline.yaml"),
                     "--param", "mnist_dir=/nonexistent/mnist"])
    assert code == 1
    err = capsys.readouterr().err
    assert "task MnistExampleGen failed (exit code 1)" in err and "/nonexistent/mnist" in err
    log = err.split("its log: ", 1)[1].split()[0]
    assert log.endswith("MnistExampleGen.log") and os.path.isfile(log)
    assert "Traceback" not in err
    assert len(os.listdir(os.path.join(local["root"], "serving", "dcgan_mnist"))) == 1
    (run_dir,) = glob.glob(os.path.join(str(tmp_path), "logs", "dcgan-mnist-*"))
    with open(os.path.join(run_dir, local_run.RUN_RECORD)) as f:
        assert [r["task"] for r in json.load(f)] == ["ImportSchemaGen", "MnistExampleGen"]


def test_an_unknown_parameter_is_refused_as_the_backend_refuses_it(local, tmp_path, capsys):
    assert cli.main(["local-run", "--pipeline-root", str(tmp_path), "--spec",
                     os.path.join(local["root"], "logs", "pipeline.yaml"),
                     "--param", "mnist=/x"]) == 2
    assert "not required by pipeline: mnist" in capsys.readouterr().err
