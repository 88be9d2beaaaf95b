"""DataValidationGate: fails the run when ExampleValidator or the custom validations found
anomalies.

The stock components never read ExampleAnomalies, so an anomaly alone would
not stop anything. Transform depends on this gate, so a failure here ends the
run before any transformation, training or push.

The TFDV custom validations (SQL over the statistics, components/schema/
custom_validations.pbtxt) run here rather than in ExampleValidator: TFX 1.16 turns
ExampleValidator's `custom_validation_config` into a proto placeholder that the Kubeflow V2
compiler refuses ("Invalid placeholder for exec prop custom_validation_config").
"""

import logging
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_data_validation.anomalies.proto import custom_validation_config_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

ANOMALIES_FILE = "SchemaDiff.pb"  # What ExampleValidator writes per split.
SCHEMA_FILE = "schema.pbtxt"  # What ImportSchemaGen writes.


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


def custom_anomalies(statistics: standard_artifacts.ExampleStatistics, split: str,
                     schema_uri: str, config_text: str) -> anomalies_pb2.Anomalies:
    """TFDV's validation of one split with the custom validations (and the schema)."""
    config = text_format.Parse(config_text, custom_validation_config_pb2.CustomValidationConfig())
    return tfdv.validate_statistics(
        stats_artifact_utils.load_statistics(statistics, split).proto(),
        tfdv.load_schema_text(os.path.join(schema_uri, SCHEMA_FILE)),
        custom_validation_config=config)


@component
def DataValidationGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    custom_validations: Parameter[str] = "",
) -> None:
    """Raises DataAnomaliesError listing every anomaly of every split.

    Args:
      custom_validations: a CustomValidationConfig in text format; empty: none.
    """
    found: list[str] = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        lines = describe_anomalies(split, read_split_anomalies(anomalies, split))
        if custom_validations:
            lines += describe_anomalies(split, custom_anomalies(statistics, split, schema.uri,
                                                                 custom_validations))
        found += [line for line in dict.fromkeys(lines) if line not in found]
    if found:
        raise DataAnomaliesError("data validation failed, the run stops here:\n  "
                                 + "\n  ".join(found))
    logging.info("DataValidationGate: no anomalies in %s", anomalies.uri)
