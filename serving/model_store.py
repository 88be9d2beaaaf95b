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
from tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis.get_model_status_pb2 import ModelVersionStatus

from dcgan_common.layout import SAVED_MODEL_FILE, WARMUP_FILE, available_versions


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


class LoadError(Exception):
    """A version that cannot load, with the error code TF Serving's loader reports for it."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code  # An error_codes_pb2 value.

    def __str__(self) -> str:  # As absl::Status::ToString prints a status.
        return f"{error_codes_pb2.Code.Name(self.code)}: {self.args[0]}"


def _read_saved_model(path: str):
    """The SavedModel proto, or the error tensorflow/cc/saved_model/reader.cc gives."""
    if not tf.io.gfile.exists(os.path.join(path, SAVED_MODEL_FILE)):
        raise LoadError(error_codes_pb2.NOT_FOUND, "Could not find SavedModel .pb or .pbtxt at "
                        f"supplied export directory path: {path}")
    try:
        return loader_impl.parse_saved_model(path)
    except OSError as err:
        raise LoadError(error_codes_pb2.DATA_LOSS, f"Can't parse "
                        f"{os.path.join(path, SAVED_MODEL_FILE)} as binary proto") from err


def load_version(base_path: str, version: int) -> LoadedVersion:
    """Loads and warms up one version; raises LoadError."""
    path = os.path.join(base_path, str(version))
    signature_defs = dict(_read_saved_model(path).meta_graphs[0].signature_def)
    try:
        model = tf.saved_model.load(path)
    except tf.errors.OpError as err:
        raise LoadError(err.error_code, err.message) from err
    loaded = LoadedVersion(version, path, model, dict(model.signatures), signature_defs)
    for log in read_warmup(path):  # Replayed like TF Serving does, before serving.
        request = log.predict_log.request
        signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
        signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
    return loaded


@dataclasses.dataclass(frozen=True)
class VersionState:
    """What TF Serving's ServableStateMonitor keeps per version: its state (a
    ModelVersionStatus.State value) and its health: OK, or a failed load's code and message
    (reported once the loader has given up: LOADING while a retry is pending is OK,
    core/loader_harness.cc)."""

    state: int
    code: int = error_codes_pb2.OK
    error: str = ""


@dataclasses.dataclass(frozen=True)
class _Failures:
    count: int  # Failed loads of one version so far.
    when: float  # time.monotonic() of the last.
    error: LoadError  # The last.


class NotAvailable(Exception):
    """No version became available: TF Serving's start-up error."""


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
        self._failures: dict[int, _Failures] = {}
        self.states: dict[int, VersionState] = {}  # Every version this store has handled.
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"poll-{name}", daemon=True)

    @property
    def current(self) -> LoadedVersion | None:
        return self._current  # One reference read: a request sees one whole version.

    def _may_load(self, version: int) -> bool:
        failures = self._failures.get(version)
        return failures is None or (failures.count <= self.max_load_retries and
                                    time.monotonic() - failures.when >=
                                    self.load_retry_interval_seconds)

    def _scan(self) -> list[int] | None:
        """The versions on disk, logged as TF Serving's poller logs them
        (file_system_storage_path_source.cc); None when the base path is missing, which, as
        there, changes nothing that is served."""
        if not tf.io.gfile.isdir(self.base_path):
            logging.error("FileSystemStoragePathSource encountered a filesystem access error: "
                          "Could not find base path %s for servable %s with error NOT_FOUND: "
                          "%s not found", self.base_path, self.name, self.base_path)
            return None
        versions = available_versions(self.base_path)
        if not versions:
            logging.warning("No versions of servable %s found under base path %s. Did you "
                            "forget to name your leaf directory as a number (eg. '/1/')?",
                            self.name, self.base_path)
        return versions

    def _give_up(self, version: int) -> None:
        """END with the last load's error: retries exhausted, or the version's directory gone
        while a retry was pending (the harness is cancelled, core/loader_harness.cc)."""
        error = self._failures[version].error
        self.states[version] = VersionState(ModelVersionStatus.END, error.code, error.args[0])

    def refresh(self) -> None:
        """Serves the highest version on disk, if it is not served and may be (re)loaded."""
        versions = self._scan()
        if versions is None:
            return
        for version, state in list(self.states.items()):
            if state.state == ModelVersionStatus.LOADING and version not in versions:
                self._give_up(version)
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
            failed = self._failures[target].count + 1 if target in self._failures else 1
            self._failures[target] = _Failures(
                failed, time.monotonic(),
                error if isinstance(error, LoadError) else
                LoadError(error_codes_pb2.UNKNOWN, str(error)))
            retrying = failed <= self.max_load_retries
            if not retrying:
                self._give_up(target)
            logging.error("Loading servable: {name: %s version: %d} failed: %s (%s; serving: %s)",
                          self.name, target, self._failures[target].error,
                          f"retry {failed} of {self.max_load_retries} in "
                          f"{self.load_retry_interval_seconds:g} s" if retrying else "giving up",
                          served.version if served else "none")
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

    def _unavailable(self) -> str | None:
        """server_core.cc WaitUntilModelsAvailable's error, once a version has failed for
        good and none serves."""
        failed = [(version, state) for version, state in sorted(self.states.items())
                  if state.state == ModelVersionStatus.END and state.code != error_codes_pb2.OK]
        if self._current is not None or not failed:
            return None
        version, state = failed[-1]
        return (f"1 model(s) did not become available: {{{{name: {self.name} version: "
                f"{version}}} due to error: {error_codes_pb2.Code.Name(state.code)}: "
                f"{state.error}}}, }}")

    def wait_for_a_version(self, stopped: threading.Event) -> bool:
        """Blocks until a version serves (True) or `stopped` is set (False); raises
        NotAvailable when the version to serve failed to load for good, as TF Serving then
        fails to start."""
        while self._current is None:
            message = self._unavailable()
            if message:
                raise NotAvailable(message)
            if stopped.wait(self.poll_seconds):
                return False
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()
