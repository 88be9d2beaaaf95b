"""Loads the highest numeric version of a TF-Serving-layout model directory and keeps it current.

The development stand-in for TF Serving's file-system poller: a version is
`<base>/<integer>/saved_model.pb`; the newest one is loaded, warmed up with
its `assets.extra/tf_serving_warmup_requests`, and only then swapped in, so
requests in flight finish on the version they started with.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis.get_model_status_pb2 import ModelVersionStatus

from trainer.export import WARMUP_FILE


@dataclasses.dataclass(frozen=True)
class LoadedVersion:
    version: int
    path: str
    model: object  # The tf.saved_model.load result; keeps the signatures' variables alive.
    signatures: dict[str, tf.types.experimental.ConcreteFunction]
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]


def available_versions(base_path: str) -> list[int]:
    """Numeric version directories that hold a saved_model.pb, ascending."""
    if not tf.io.gfile.isdir(base_path):
        return []
    versions = []
    for name in tf.io.gfile.listdir(base_path):
        name = name.rstrip("/")
        if name.isdigit() and tf.io.gfile.exists(os.path.join(base_path, name, "saved_model.pb")):
            versions.append(int(name))
    return sorted(versions)


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
    """The currently served version of one model, refreshed by a polling thread."""

    def __init__(self, name: str, base_path: str, poll_seconds: float = 1.0):
        self.name = name
        self.base_path = base_path
        self.poll_seconds = poll_seconds
        self._current: LoadedVersion | None = None
        self._broken: set[int] = set()  # Versions that failed to load are not retried.
        self.states: dict[int, VersionState] = {}  # Every version this store has handled.
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"poll-{name}", daemon=True)

    @property
    def current(self) -> LoadedVersion | None:
        return self._current  # One reference read: a request sees one whole version.

    def refresh(self) -> None:
        """Loads the highest version if it is newer than the served one."""
        versions = [v for v in available_versions(self.base_path) if v not in self._broken]
        if not versions or (self._current and versions[-1] <= self._current.version):
            return
        self.states[versions[-1]] = VersionState(ModelVersionStatus.LOADING)
        try:
            loaded = load_version(self.base_path, versions[-1])
        except Exception as error:  # pylint: disable=broad-except
            self._broken.add(versions[-1])
            self.states[versions[-1]] = VersionState(ModelVersionStatus.END, str(error))
            logging.exception("could not load %s version %d; still serving %s", self.name,
                              versions[-1], self._current and self._current.version)
            return
        if self._current:  # Unloaded once the new version serves: END, as TF Serving reports.
            self.states[self._current.version] = VersionState(ModelVersionStatus.END)
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

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()
