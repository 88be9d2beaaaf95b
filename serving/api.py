"""The model server's API, transport-neutral: Predict, GetModelMetadata and GetModelStatus on
TF Serving's request and response protos, with TF Serving's status codes and texts (each
behaviour cites the TF Serving source it follows). The gRPC and REST front ends call these.
"""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     predict_pb2)

from serving import limits
from serving.model_store import LoadedVersion, ModelStore

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_MAX_BATCH = limits.MAX_BATCH_SIZE  # TF Serving's, from batching_parameters.txt.


class RequestError(Exception):
    """A request TF Serving would refuse: carries the gRPC code and message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def servable(store: ModelStore, spec: model_pb2.ModelSpec) -> LoadedVersion:
    """The version a ModelSpec asks for, or TF Serving's NOT_FOUND."""
    if not spec.name:  # model_servers/server_core.cc
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")
    current = store.current if spec.name == store.name else None
    if spec.HasField("version"):
        if current is None or current.version != spec.version.value:
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Specific({spec.name}, "
                               f"{spec.version.value})")
    elif spec.version_label:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Unrecognized servable version label: {spec.version_label}")
    if current is None:
        raise RequestError(grpc.StatusCode.NOT_FOUND,
                           f"Servable not found for request: Latest({spec.name})")
    return current


def _type_name(dtype) -> str:
    """TensorFlow's DataTypeString: float, double, int64, ..."""
    return types_pb2.DataType.Name(tf.dtypes.as_dtype(dtype).as_datatype_enum)[3:].lower()


def _check_input(name: str, index: int, value: np.ndarray, info, max_batch: int) -> None:
    expected = tf.dtypes.as_dtype(info.dtype)
    if tf.dtypes.as_dtype(value.dtype) != expected:  # The session's feed check.
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Expects arg[{index}] to be {_type_name(expected)} but "
                           f"{_type_name(value.dtype)} is provided")
    shape = tf.TensorShape(None if info.tensor_shape.unknown_rank else
                           [d.size if d.size >= 0 else None for d in info.tensor_shape.dim])
    if not shape.is_compatible_with(value.shape):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input '{name}' has shape {list(value.shape)}, the signature "
                           f"expects {shape}")
    if value.ndim and value.shape[0] > max_batch:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Task size {value.shape[0]} is larger than maximum input batch "
                           f"size {max_batch}")


def signature_of(served: LoadedVersion, spec: model_pb2.ModelSpec
                 ) -> tuple[str, meta_graph_pb2.SignatureDef]:
    """The signature a ModelSpec names (default: serving_default), or TF Serving's error."""
    name = spec.signature_name or DEFAULT_SIGNATURE
    if name not in served.signatures:  # servables/tensorflow/predict_util.cc
        raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"Serving signature key \"{name}\" not found.")
    return name, served.signature_defs[name]


def predict(store: ModelStore, request: predict_pb2.PredictRequest,
            max_batch: int = DEFAULT_MAX_BATCH) -> predict_pb2.PredictResponse:
    """Runs one PredictRequest the way TF Serving would (predict_util.cc, as all below), or
    raises RequestError."""
    served = servable(store, request.model_spec)
    name, signature_def = signature_of(served, request.model_spec)
    expected, given = sorted(signature_def.inputs), sorted(request.inputs)
    if len(given) != len(expected):
        def names(keys):
            return "{" + ",".join(keys) + "}"
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input size does not match signature: {len(given)}!={len(expected)} "
            f"len({names(given)}) != len({names(expected)}). Sent extra: "
            f"{names(sorted(set(given) - set(expected)))}. Missing but required: "
            f"{names(sorted(set(expected) - set(given)))}.")
    for key in given:
        if key not in signature_def.inputs:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input tensor alias not found in signature: {key}. Inputs "
                               f"expected to be in the set {{{','.join(expected)}}}.")
    inputs = {}
    for index, key in enumerate(expected):
        try:
            value = tf.make_ndarray(request.inputs[key])
        except (TypeError, ValueError) as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"tensor parsing error: {key}") from err
        _check_input(key, index, value, signature_def.inputs[key], max_batch)
        inputs[key] = tf.constant(value)
    outputs = set(request.output_filter) or set(signature_def.outputs)
    unknown = outputs - set(signature_def.outputs)
    if unknown:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"output tensor alias not found in signature: {sorted(unknown)}")
    try:
        results = served.signatures[name](**inputs)
    except tf.errors.InvalidArgumentError as err:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, err.message) from err
    response = predict_pb2.PredictResponse()
    response.model_spec.name = store.name
    response.model_spec.version.value = served.version
    response.model_spec.signature_name = name
    for key in outputs:
        response.outputs[key].CopyFrom(tf.make_tensor_proto(results[key].numpy()))
    return response


def model_metadata(store: ModelStore, request: get_model_metadata_pb2.GetModelMetadataRequest
                   ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    served = servable(store, request.model_spec)
    if list(request.metadata_field) != ["signature_def"]:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           "Metadata field(s) not supported: only signature_def")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = store.name
    response.model_spec.version.value = served.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in served.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    response.metadata["signature_def"].Pack(signature_map)
    return response


def model_status(store: ModelStore, request: get_model_status_pb2.GetModelStatusRequest
                 ) -> get_model_status_pb2.GetModelStatusResponse:
    """Every version the store has handled, newest first, with its state (END after a swap or
    a failed load), as model_servers/get_model_status_impl.cc answers."""
    if not request.HasField("model_spec"):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    spec = request.model_spec
    states = dict(store.states) if spec.name == store.name else {}
    if spec.HasField("version"):
        if spec.version.value not in states:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"Could not find version "
                               f"{spec.version.value} of model {spec.name}")
        states = {spec.version.value: states[spec.version.value]}
    elif not states:
        raise RequestError(grpc.StatusCode.NOT_FOUND,
                           f"Could not find any versions of model {spec.name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    for version in sorted(states, reverse=True):
        status = response.model_version_status.add(version=version, state=states[version].state)
        status.status.SetInParent()  # TF Serving always sets it: OK, or the load's error.
        if states[version].error:
            status.status.error_code = error_codes_pb2.UNKNOWN
            status.status.error_message = states[version].error
    return response
