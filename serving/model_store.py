"""Serves the highest numeric version of a TF-Serving-layout model directory and keeps it current.

The development stand-in for TF Serving's file-system poller and manager: a version is
`<base>/<integer>/saved_model.pb`; the highest one is loaded, warmed up with its
`assets.extra/tf_serving_warmup_requests`, and only then swapped in, so requests in flight
finish on the version they started with. Retries and roll-back: see ModelStore.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis.get_model_status_pb2 import ModelVersionStatus

from dcgan_common.layout import WARMUP_FILE, available_versions


@dataclasses.dataclass(frozen=True)
class LoadedVersion:
    version: int
    path: str
    model: object  # The tf.saved_model.load result; keeps the signatures' variables alive.
    signatures: dict[str, tf.types.experimental.ConcreteFunction]
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]


def read_warmup(path: str) -> list[prediction_log_pb2.PredictionLog]:
    warmup = os.path.join(path, WARMUP_FILE)
    if not tf.io.gfile.exists(warmup):
        return []
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(warmup)]


def load_version(base_path: str, version: int) -> LoadedVersion:
    path = os.path.join(base_path, str(version))
    model = tf.saved_model.load(path)
    signature_defs = dict(loader_impl.parse_saved_model(path).meta_graphs[0].signature_def)
    loaded = LoadedVersion(version, path, model, dict(model.signatures), signature_defs)
    for log in read_warmup(path):  # Replayed like TF Serving does, before serving.
        request = log.predict_log.request
        signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
        signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
    return loaded


@dataclasses.dataclass(frozen=True)
class VersionState:
    """What TF Serving's ServableStateMonitor keeps per version: its state (a
    ModelVersionStatus.State value) and, for a failed load, the error."""

    state: int
    error: str = ""


class ModelStore:
    """The served version of one model, refreshed by a polling thread, as TF Serving's
    file-system source and manager do with the `latest` version policy: the highest numeric
    version on disk is the one to serve; a newer one replaces the served one once it has loaded
    (the served one keeps serving meanwhile, and if the load fails); a failed load is retried
    (`max_load_retries` times, `load_retry_interval_seconds` apart; TF Serving's
    --max_num_load_retries 5 and --load_retry_interval_micros one minute); when the served
    version's directory is deleted, the highest remaining version is loaded (or none serves)."""

    def __init__(self, name: str, base_path: str, poll_seconds: float = 1.0,
                 max_load_retries: int = 5, load_retry_interval_seconds: float = 60.0):
        self.name = name
        self.base_path = base_path
        self.poll_seconds = poll_seconds
        self.max_load_retries = max_load_retries
        self.load_retry_interval_seconds = load_retry_interval_seconds
        self._current: LoadedVersion | None = None
        self._failures: dict[int, tuple[int, float]] = {}  # version -> (failed loads, when)
        self.states: dict[int, VersionState] = {}  # Every version this store has handled.
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"poll-{name}", daemon=True)

    @property
    def current(self) -> LoadedVersion | None:
        return self._current  # One reference read: a request sees one whole version.

    def _may_load(self, version: int) -> bool:
        failed, when = self._failures.get(version, (0, 0.0))
        return failed == 0 or (failed <= self.max_load_retries and
                               time.monotonic() - when >= self.load_retry_interval_seconds)

    def refresh(self) -> None:
        """Serves the highest version on disk, if it is not served and may be (re)loaded."""
        versions = available_versions(self.base_path)
        served = self._current
        if not versions:
            if served:  # Its directory is gone, and no other version is there.
                self.states[served.version] = VersionState(ModelVersionStatus.END)
                self._current = None
                logging.info("%s version %d was deleted; no version serves", self.name,
                             served.version)
            return
        target = versions[-1]
        if (served and target == served.version) or not self._may_load(target):
            return
        self.states[target] = VersionState(ModelVersionStatus.LOADING)
        try:
            loaded = load_version(self.base_path, target)
        except Exception as error:  # pylint: disable=broad-except
            failed = self._failures.get(target, (0, 0.0))[0] + 1
            self._failures[target] = (failed, time.monotonic())
            retrying = failed <= self.max_load_retries
            self.states[target] = VersionState(
                ModelVersionStatus.LOADING if retrying else ModelVersionStatus.END, str(error))
            logging.exception("could not load %s version %d (%s); still serving %s", self.name,
                              target, f"retry {failed} of {self.max_load_retries} in "
                              f"{self.load_retry_interval_seconds:g} s" if retrying else
                              "giving up", served and served.version)
            return
        self._failures.pop(target, None)
        if served:  # Unloaded once the new version serves: END, as TF Serving reports.
            self.states[served.version] = VersionState(ModelVersionStatus.END)
        self.states[loaded.version] = VersionState(ModelVersionStatus.AVAILABLE)
        self._current = loaded
        logging.info("serving %s version %d from %s", self.name, loaded.version, loaded.path)

    def start(self) -> "ModelStore":
        self.refresh()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def wait_for_a_version(self, stopped: threading.Event) -> bool:
        """Blocks until a version serves (True) or `stopped` is set (False)."""
        while self._current is None:
            if stopped.wait(self.poll_seconds):
                return False
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()
