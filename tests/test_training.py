"""Training for real: kill-and-resume, divergence, multi-worker (processes on loopback)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import portpicker
import pytest
import tensorflow as tf

from components import mnist_idx

from dcgan_common import features
from trainer.data import training_dataset
from dcgan_common.features import Z
from trainer.gan import DCGAN
from trainer.run import checkpoint_dir, train_and_export
from trainer.train_loop import TrainingDivergedError, train
from settings import trainer_config, with_settings

WORKER = os.path.join(os.path.dirname(__file__), "train_worker.py")
TINY = trainer_config(generator_filters=(16, 8), discriminator_filters=(8, 16), batch_size=16,
                      log_every_steps=10, sample_every_steps=1000, checkpoint_every_steps=10)


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """The slice's training digits as Transform writes them (image_xf, label_xf), gzipped."""
    from conftest import MNIST_SLICE
    data = mnist_idx.load_split(MNIST_SLICE, "train")
    path = str(tmp_path_factory.mktemp("transformed") / "train.gz")
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
        for image, label in zip(data.images, data.labels):
            pixels = image.reshape(-1).astype(np.float32) / 127.5 - 1.0
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                features.IMAGE_XF: tf.train.Feature(float_list=tf.train.FloatList(value=pixels)),
                features.LABEL_XF: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            })).SerializeToString())
    return path


def start(config, pattern, run_dir, serving_dir, env=None, log=None):
    return subprocess.Popen(
        [sys.executable, WORKER, json.dumps(config.to_dict()), pattern, str(run_dir),
         str(serving_dir)], env={**os.environ, **(env or {})},
        stdout=log, stderr=subprocess.STDOUT)


def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path, transformed):
    config = with_settings(TINY, train_steps=400,
                           checkpoint_dir=str(tmp_path / "checkpoints"))
    directory = checkpoint_dir(config, [transformed])
    with open(tmp_path / "first.log", "wb") as log:
        process = start(config, transformed, tmp_path / "run", tmp_path / "out" / "1", log=log)
        deadline = time.time() + 300
        while not tf.train.latest_checkpoint(directory) or \
                int(tf.train.latest_checkpoint(directory).rsplit("-", 1)[1]) < 30:
            assert process.poll() is None, open(tmp_path / "first.log").read()[-3000:]
            assert time.time() < deadline
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
    killed_at = int(tf.train.latest_checkpoint(directory).rsplit("-", 1)[1])
    assert 30 <= killed_at < 400
    assert not os.path.exists(tmp_path / "out" / "1")  # Nothing exported by the killed run.
    with open(tmp_path / "second.log", "wb") as log:
        second = start(config, transformed, tmp_path / "run", tmp_path / "out" / "1", log=log)
        assert second.wait(300) == 0
    output = open(tmp_path / "second.log").read()
    resumed = int(output.split("at step ")[1].split()[0])
    assert "resumed from checkpoint" in output and resumed >= killed_at
    assert f"step {resumed + 10 - resumed % 10}/400" in output  # Picks up after the checkpoint.
    assert "step 10/400" not in output
    assert tf.train.latest_checkpoint(directory).endswith("-400")
    assert len(tf.io.gfile.glob(os.path.join(directory, "ckpt-*.index"))) <= TINY.runtime.checkpoints_to_keep
    assert tf.saved_model.load(str(tmp_path / "out" / "1")).signatures["serving_default"]


def test_a_resumed_run_continues_the_data_and_noise_where_it_stopped(tmp_path, transformed):
    config = with_settings(TINY, checkpoint_every_steps=2)
    expected = [batch[Z].numpy() for batch in training_dataset([transformed], config).take(6)]

    def noise_seen(train_steps: int) -> list[np.ndarray]:
        gan = DCGAN(with_settings(config, train_steps=train_steps),
                    tf.distribute.get_strategy())
        seen, step = [], gan.train_step
        gan.train_step = lambda batch: (seen.append(batch[Z].numpy()), step(batch))[1]
        train(gan, training_dataset([transformed], gan.config), str(tmp_path / f"run{train_steps}"),
              str(tmp_path / "checkpoints"))
        return seen

    np.testing.assert_array_equal(noise_seen(4), expected[:4])
    np.testing.assert_array_equal(noise_seen(6), expected[4:])  # Resumed at step 4.


def test_a_diverging_run_stops_with_the_step_and_exports_nothing(tmp_path, transformed):
    config = with_settings(TINY, train_steps=200, learning_rate=1e12, beta_1=0.0)
    with pytest.raises(TrainingDivergedError, match=r"training diverged at step \d+: .*nan"):
        train_and_export(config, [transformed], str(tmp_path / "run"), str(tmp_path / "serving"))
    assert not os.path.exists(tmp_path / "serving")


def test_two_workers_train_to_identical_weights_and_only_the_chief_exports(tmp_path, transformed):
    ports = [portpicker.pick_unused_port() for _ in range(2)]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    # Synchronized BatchNorm: otherwise each worker keeps moving statistics of its own
    # half of the batch (the trainable weights are identical either way).
    config = with_settings(TINY, train_steps=5, strategy="multi_worker",
                           sync_batch_norm=True)
    workers = []
    for index in range(2):
        log = open(tmp_path / f"worker{index}.log", "wb")
        env = {"TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        workers.append((start(config, transformed, tmp_path / f"run{index}",
                              tmp_path / f"out{index}" / "serving", env=env, log=log), log))
    for index, (process, log) in enumerate(workers):
        code = process.wait(300)
        log.close()
        assert code == 0, open(tmp_path / f"worker{index}.log").read()[-3000:]
    chief, other = (np.load(tmp_path / f"out{i}" / f"weights-{i}.npz") for i in range(2))
    assert len(chief.files) == len(other.files) > 0
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    assert os.path.exists(tmp_path / "out0" / "serving" / "saved_model.pb")
    assert not os.path.exists(tmp_path / "out1" / "serving")
    assert os.listdir(tmp_path / "run0") and not os.path.exists(tmp_path / "run1")
    assert "MultiWorkerMirroredStrategy" in open(tmp_path / "worker1.log").read()


def test_killed_workers_resume_from_the_chiefs_checkpoint(tmp_path, transformed):
    """Both workers killed mid-run; restarted, they restore the chief's last checkpoint."""
    ports = [portpicker.pick_unused_port() for _ in range(2)]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    config = with_settings(TINY, train_steps=300, strategy="multi_worker",
                           sync_batch_norm=True,
                                 checkpoint_dir=str(tmp_path / "checkpoints"))
    directory = checkpoint_dir(config, [transformed])

    def launch(attempt):
        workers = []
        for index in range(2):
            log = open(tmp_path / f"attempt{attempt}-worker{index}.log", "wb")
            env = {"TF_CONFIG": json.dumps({"cluster": cluster,
                                            "task": {"type": "worker", "index": index}})}
            workers.append(start(config, transformed, tmp_path / f"run{index}",
                                 tmp_path / f"out{index}" / "serving", env=env, log=log))
        return workers

    first = launch(1)
    deadline = time.time() + 300
    while not tf.train.latest_checkpoint(directory) or \
            int(tf.train.latest_checkpoint(directory).rsplit("-", 1)[1]) < 20:
        assert all(p.poll() is None for p in first), open(tmp_path / "attempt1-worker0.log").read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.2)
    for process in first:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    killed_at = int(tf.train.latest_checkpoint(directory).rsplit("-", 1)[1])
    assert killed_at < 300
    second = launch(2)
    for index, process in enumerate(second):
        assert process.wait(300) == 0, open(tmp_path / f"attempt2-worker{index}.log").read()[-3000:]
    for index in range(2):
        log = open(tmp_path / f"attempt2-worker{index}.log").read()
        resumed = int(log.split("at step ")[1].split()[0])
        assert "resumed from checkpoint" in log and resumed >= killed_at, index
    assert tf.train.latest_checkpoint(directory).endswith("-300")
    chief, other = (np.load(tmp_path / f"out{i}" / f"weights-{i}.npz") for i in range(2))
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], other[name])


def test_checkpoints_resume_only_on_the_same_data_in_the_same_paths(tmp_path, transformed,
                                                                     caplog):
    """New content in the same file (a reset metadata store reuses artifact paths) starts fresh;
    the same content resumes."""
    data = tmp_path / "Split-train" / "data.gz"
    data.parent.mkdir()
    data.write_bytes(open(transformed, "rb").read())
    pattern = str(data.parent / "*")
    config = with_settings(TINY, train_steps=4, checkpoint_every_steps=2,
                           checkpoint_dir=str(tmp_path / "checkpoints"))
    first = checkpoint_dir(config, [pattern])
    train_and_export(config, [pattern], str(tmp_path / "run1"), str(tmp_path / "serving1"))
    assert tf.train.latest_checkpoint(first).endswith("-4")

    longer = with_settings(config, train_steps=6)
    with caplog.at_level("INFO"):
        train_and_export(longer, [pattern], str(tmp_path / "run2"), str(tmp_path / "serving2"))
    assert "resumed from checkpoint" not in caplog.text  # Other settings: another key.

    # Other images in the same path: the key changes, nothing is resumed or exported from it.
    with tf.io.TFRecordWriter(str(data), tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for record in tf.data.TFRecordDataset(transformed, "GZIP").take(200):
            w.write(record.numpy())
    changed = checkpoint_dir(config, [pattern])
    assert changed != first and not tf.train.latest_checkpoint(changed)
    caplog.clear()
    with caplog.at_level("INFO"):
        train_and_export(config, [pattern], str(tmp_path / "run3"), str(tmp_path / "serving3"))
    assert "resumed from checkpoint" not in caplog.text
    assert "already trained" not in caplog.text
    assert tf.train.latest_checkpoint(changed).endswith("-4")

    # The original content again: its finished checkpoint is found (nothing left to train).
    data.write_bytes(open(transformed, "rb").read())
    assert checkpoint_dir(config, [pattern]) == first
    caplog.clear()
    with caplog.at_level("INFO"):
        train_and_export(config, [pattern], str(tmp_path / "run4"), str(tmp_path / "serving4"))
    assert "already trained to step 4 of 4" in caplog.text


def logged_losses(log: str) -> dict[int, str]:
    """step -> the d_loss and g_loss the Trainer logged there."""
    return {int(step): losses for step, losses in
            re.findall(r"step (\d+)/\d+ (d_loss \S+ g_loss \S+)", log)}


def test_a_killed_and_resumed_run_replays_the_uninterrupted_one(tmp_path, transformed):
    """Same seed, float32: killed after a checkpoint and resumed in a fresh process, the run
    logs the uninterrupted run's losses at every later step and ends with its weights. The
    uninterrupted process had its global random state seeded before (as the ClassifierTrainer
    does when it runs first in the pipeline's process), the resumed one not (its
    ClassifierTrainer was cached): the data order must not depend on that."""
    config = with_settings(TINY, train_steps=60, mixed_precision="float32")

    def run(name, env, kill_after=None, attempt=1):
        setting = with_settings(config, checkpoint_dir=str(tmp_path / name / "checkpoints"))
        log_path = tmp_path / f"{name}-{attempt}.log"
        with open(log_path, "wb") as log:
            process = start(setting, transformed, tmp_path / name / "run",
                            tmp_path / name / "serving", env=env, log=log)
            directory = checkpoint_dir(setting, [transformed])
            while kill_after and process.poll() is None:
                latest = tf.train.latest_checkpoint(directory)
                if latest and int(latest.rsplit("-", 1)[1]) >= kill_after:
                    process.send_signal(signal.SIGKILL)
                time.sleep(0.05)
            assert process.wait(600) in ((0,) if not kill_after else (0, -signal.SIGKILL))
        return log_path.read_text()

    cpu = {"CUDA_VISIBLE_DEVICES": ""}  # Deterministic kernels on any host.
    uninterrupted = run("a", {"SEED_BEFORE": "7", **cpu})
    first = run("b", cpu, kill_after=30)
    resumed = run("b", cpu, attempt=2)
    resumed_at = int(resumed.split("at step ")[1].split()[0])
    assert "resumed from checkpoint" in resumed and 30 <= resumed_at < 60, first[-2000:]
    expected, found = logged_losses(uninterrupted), logged_losses(resumed)
    later = [step for step in expected if step > resumed_at]
    assert later and {step: found[step] for step in later} == {
        step: expected[step] for step in later}
    a, b = (np.load(tmp_path / name / "weights-0.npz") for name in ("a", "b"))
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
