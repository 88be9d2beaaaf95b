"""The model server's API, transport-neutral: Predict, GetModelMetadata and GetModelStatus on
TF Serving's request and response protos, with TF Serving's status codes and texts (each
behaviour cites the TF Serving source it follows). The gRPC and REST front ends call these.
"""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     predict_pb2)

from serving import limits
from serving.model_store import LoadedVersion, ModelStore

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_MAX_BATCH = limits.MAX_BATCH_SIZE  # TF Serving's, from batching_parameters.txt.
SIGNATURE_DEF = "signature_def"  # GetModelMetadataImpl::kSignatureDef, the one field served.


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


def dtype_name(dtype) -> str:
    """TensorFlow's DataTypeString (float, double, int64, ...) of a DataType enum or dtype."""
    return types_pb2.DataType.Name(tf.dtypes.as_dtype(dtype).as_datatype_enum)[3:].lower()


def _signature_shape(info: meta_graph_pb2.TensorInfo) -> tf.TensorShape:
    return tf.TensorShape(None if info.tensor_shape.unknown_rank else
                          [d.size if d.size >= 0 else None for d in info.tensor_shape.dim])


def _check_size(name: str, tensor, info: meta_graph_pb2.TensorInfo, max_batch: int) -> None:
    """Refuses, from the request's shape alone, a tensor that would be larger than the batch
    limit allows: a 30-byte request may claim billions of values (Tensor::FromProto fills
    missing values), so nothing is allocated before this check."""
    dims = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_shape.unknown_rank or any(size < 0 for size in dims):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"tensor parsing error: {name}")
    if dims and dims[0] > max_batch:  # batching_session.cc, with the scheduler's text.
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Task size {dims[0]} is larger than maximum input batch size "
                           f"{max_batch}")
    expected = _signature_shape(info)
    if not expected.is_compatible_with(dims):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input '{name}' has shape {dims}, the signature expects {expected}")


def _input_values(signature_def: meta_graph_pb2.SignatureDef,
                  request: predict_pb2.PredictRequest, max_batch: int) -> dict[str, tf.Tensor]:
    """tensorflow/cc/saved_model/util.cc GetInputValues (TF 2.16), with the size check before
    any tensor is built, then the session's dtype check."""
    for alias, info in sorted(signature_def.inputs.items()):
        if alias not in request.inputs:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                f"and no default value provided. Inputs expected to be in the request "
                f"{{{','.join(sorted(request.inputs))}}}, or default input alias set: ")
    inputs = {}
    for index, (alias, info) in enumerate(sorted(signature_def.inputs.items())):
        tensor = request.inputs[alias]
        _check_size(alias, tensor, info, max_batch)
        try:
            value = tf.make_ndarray(tensor)
        except Exception as err:  # pylint: disable=broad-except
            # Whatever a malformed proto makes numpy or TensorFlow raise (a wrong content
            # size, a dtype with no numpy twin such as DT_VARIANT): Tensor::FromProto fails.
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"tensor parsing error: {alias}") from err
        if tf.dtypes.as_dtype(value.dtype) != tf.dtypes.as_dtype(info.dtype):
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,  # The session's feed check.
                               f"Expects arg[{index}] to be {dtype_name(info.dtype)} but "
                               f"{dtype_name(value.dtype)} is provided")
        inputs[alias] = tf.constant(value)
    return inputs


def _output_aliases(signature_def: meta_graph_pb2.SignatureDef,
                    request: predict_pb2.PredictRequest) -> list[str]:
    """predict_util.cc PreProcessPrediction: the filter, each alias known and named once; or
    every output."""
    seen: list[str] = []
    for alias in request.output_filter:
        if alias not in signature_def.outputs:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"output tensor alias not found in signature: {alias} Outputs "
                               f"expected to be in the set "
                               f"{{{','.join(sorted(signature_def.outputs))}}}.")
        if alias in seen:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen or sorted(signature_def.outputs)


def signature_of(served: LoadedVersion, spec: model_pb2.ModelSpec
                 ) -> tuple[str, meta_graph_pb2.SignatureDef]:
    """The signature a ModelSpec names (default: serving_default), or TF Serving's error."""
    name = spec.signature_name or DEFAULT_SIGNATURE
    if name not in served.signatures:  # servables/tensorflow/predict_util.cc
        raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"Serving signature key \"{name}\" not found.")
    return name, served.signature_defs[name]


def run_predict(store: ModelStore, request: predict_pb2.PredictRequest, max_batch: int
                ) -> tuple[LoadedVersion, str, dict[str, np.ndarray]]:
    """Runs one PredictRequest the way TF Serving would (predict_util.cc RunPredict): the
    version served, the signature's name and the requested outputs; or raises RequestError."""
    served = servable(store, request.model_spec)
    name, signature_def = signature_of(served, request.model_spec)
    expected, given = sorted(signature_def.inputs), sorted(request.inputs)
    if len(given) != len(expected):  # VerifyRequestInputsSize (no signature has defaults).
        def names(keys):
            return "{" + ",".join(keys) + "}"
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input size does not match signature: {len(given)}!={len(expected)} "
            f"len({names(given)}) != len({names(expected)}). Sent extra: "
            f"{names(sorted(set(given) - set(expected)))}. Missing but required: "
            f"{names(sorted(set(expected) - set(given)))}.")
    inputs = _input_values(signature_def, request, max_batch)
    aliases = _output_aliases(signature_def, request)
    try:
        results = served.signatures[name](**inputs)
    except tf.errors.InvalidArgumentError as err:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, err.message) from err
    return served, name, {alias: results[alias].numpy() for alias in aliases}


def tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Tensor::AsProtoField: the values in the dtype's typed field (float_val, int_val,
    string_val, ...), as TF Serving answers by default (server_core.h, kAsProtoField); not
    tensor_content, which clients reading the typed fields would not see."""
    dtype = tf.dtypes.as_dtype(array.dtype)
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum,
                                   tensor_shape=tf.TensorShape(array.shape).as_proto())
    field = _PROTO_FIELDS[dtype]
    values = array.view(np.uint16) if field == "half_val" else array
    getattr(proto, field).extend(values.ravel().tolist())
    return proto


_PROTO_FIELDS = {tf.float32: "float_val", tf.float64: "double_val", tf.int32: "int_val",
                 tf.int16: "int_val", tf.int8: "int_val", tf.uint8: "int_val",
                 tf.uint16: "int_val", tf.int64: "int64_val", tf.uint32: "uint32_val",
                 tf.uint64: "uint64_val", tf.bool: "bool_val", tf.string: "string_val",
                 tf.float16: "half_val"}


def predict(store: ModelStore, request: predict_pb2.PredictRequest,
            max_batch: int = DEFAULT_MAX_BATCH) -> predict_pb2.PredictResponse:
    """PredictionService.Predict: run_predict, answered in a PredictResponse."""
    served, name, outputs = run_predict(store, request, max_batch)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = store.name
    response.model_spec.version.value = served.version
    response.model_spec.signature_name = name
    for alias, array in outputs.items():
        response.outputs[alias].CopyFrom(tensor_proto(array))
    return response


def model_metadata(store: ModelStore, request: get_model_metadata_pb2.GetModelMetadataRequest
                   ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """get_model_metadata_impl.cc: the request is validated before the model is looked up."""
    if not request.HasField("model_spec"):
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    if not request.metadata_field:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                           "GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Metadata field {field} is not supported")
    served = servable(store, request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = store.name
    response.model_spec.version.value = served.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in served.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    response.metadata[SIGNATURE_DEF].Pack(signature_map)
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
        status.status.error_code = states[version].code
        status.status.error_message = states[version].error
    return response
