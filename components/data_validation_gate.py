"""DataValidationGate: fails the run when ExampleValidator found anomalies.

The stock components never read ExampleAnomalies, so an anomaly alone would
not stop anything. Transform depends on this gate, so a failure here ends the
run before any transformation, training or push.
"""

import logging
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"  # What ExampleValidator writes per split.


class DataAnomaliesError(RuntimeError):
    """The examples do not match the curated schema."""


def describe_anomalies(split: str, anomalies: anomalies_pb2.Anomalies) -> list[str]:
    """One line per anomaly: split, feature and TFDV's description."""
    lines = [f"split {split!r}, feature {name!r}: {info.short_description} ({info.description})"
             for name, info in sorted(anomalies.anomaly_info.items())]
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"split {split!r}, dataset: {info.short_description} ({info.description})")
    return lines


def read_split_anomalies(artifact: standard_artifacts.ExampleAnomalies,
                         split: str) -> anomalies_pb2.Anomalies:
    path = os.path.join(artifact_utils.get_split_uri([artifact], split), ANOMALIES_FILE)
    with tf.io.gfile.GFile(path, "rb") as f:
        return anomalies_pb2.Anomalies.FromString(f.read())


@component
def DataValidationGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
) -> None:
    """Raises DataAnomaliesError listing every anomaly of every split."""
    found = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        found += describe_anomalies(split, read_split_anomalies(anomalies, split))
    if found:
        raise DataAnomaliesError("data validation failed, the run stops here:\n  "
                                 + "\n  ".join(found))
    logging.info("DataValidationGate: no anomalies in %s", anomalies.uri)
