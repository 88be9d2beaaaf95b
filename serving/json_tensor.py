"""TF Serving's REST body <-> tensor conversion, rule for rule and text for text as
tensorflow_serving/util/json_tensor.cc (2.16.1) does it: FillPredictRequestFromJson turns a
`{"instances": ...}` or `{"inputs": ...}` body into a PredictRequest's typed value fields, and
MakeJsonFromTensors turns the response's tensors back into JSON.

Every refusal is a RequestError (INVALID_ARGUMENT, as json_tensor.cc returns), never an
exception of the JSON or numpy libraries, so the REST front end answers every body.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from typing import Any, Mapping

import grpc
import numpy as np
from google.protobuf.internal import containers
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import predict_pb2

from serving.api import RequestError, dtype_name

BASE64_KEY = "b64"
BYTES_SUFFIX = "_bytes"
_INT32 = (-2 ** 31, 2 ** 31)
_INT64 = (-2 ** 63, 2 ** 63)
_UINT32 = (0, 2 ** 32)
_UINT64 = (0, 2 ** 64)


class Format(enum.Enum):
    """Which key the request used, hence which key the response uses."""
    ROW = "predictions"  # "instances" in the request.
    COLUMNAR = "outputs"  # "inputs" in the request.


def _invalid(*parts: Any) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, "".join(str(p) for p in parts))


def _decimal(value: float, float32: bool) -> str:
    """json_tensor.cc WriteDecimal: six digits if they round-trip, else max_digits10; a '.0' on
    whole numbers; NaN and Infinity by name."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:.6g}"
    parse = np.float32 if float32 else float
    if parse(text) != parse(value):
        text = f"{value:.{9 if float32 else 17}g}"
    return text if "." in text or "e" in text else text + ".0"


def value_text(value: Any) -> str:
    """JsonValueToString: the value as rapidjson's PrettyWriter writes it (for error texts)."""
    if isinstance(value, float):
        with np.errstate(over="ignore"):  # A double beyond float32 is simply not a float.
            return _decimal(value, float32=float(np.float32(value)) == value)
    return json.dumps(value, indent=4, ensure_ascii=False, allow_nan=True)


def _type_text(value: Any) -> str:
    """JsonTypeString."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def parse(body: bytes) -> dict[str, Any]:
    """ParseJson: the body as a JSON object (NaN and Infinity allowed, as rapidjson's
    kParseNanAndInfFlag), or TF Serving's error."""
    if not body:
        raise _invalid("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except json.JSONDecodeError as err:
        raise _invalid("JSON Parse error: ", err.msg, " at offset: ", err.pos) from err
    except UnicodeDecodeError as err:
        raise _invalid("JSON Parse error: Invalid encoding in string. at offset: ",
                       err.start) from err
    except RecursionError as err:  # rapidjson would recurse too; here it is a clean refusal.
        raise _invalid("JSON Parse error: nesting too deep") from err
    if not isinstance(document, dict):
        raise _invalid("JSON Value: ", value_text(document), " Is not object")
    return document


def _is_base64_object(value: Any) -> bool:
    return (isinstance(value, dict) and len(value) == 1 and
            isinstance(value.get(BASE64_KEY), str))


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_base64_object(value)


def _dense_shape(value: Any) -> list[int]:
    """GetDenseTensorShape: list sizes along the first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _type_error(value: Any, dtype: int) -> RequestError:
    return _invalid("JSON Value: ", value_text(value), " Type: ", _type_text(value),
                    " is not of expected type: ", dtype_name(dtype))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer_in(value: Any, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value < bounds[1]  # pylint: disable=unidiomatic-typecheck


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # An integer beyond double: rapidjson reads it as a double, inf.
        return math.inf if value > 0 else -math.inf


# AddValueToTensor: per dtype, the JSON test and the TensorProto field it fills.
_CONVERSIONS = {
    types_pb2.DT_FLOAT: (_number, "float_val", _float),
    types_pb2.DT_DOUBLE: (_number, "double_val", _float),
    types_pb2.DT_INT32: (lambda v: _integer_in(v, _INT32), "int_val", int),
    types_pb2.DT_INT16: (lambda v: _integer_in(v, _INT32), "int_val", int),
    types_pb2.DT_INT8: (lambda v: _integer_in(v, _INT32), "int_val", int),
    types_pb2.DT_UINT8: (lambda v: _integer_in(v, _INT32), "int_val", int),
    types_pb2.DT_STRING: (lambda v: isinstance(v, str), "string_val", str.encode),
    types_pb2.DT_INT64: (lambda v: _integer_in(v, _INT64), "int64_val", int),
    types_pb2.DT_BOOL: (lambda v: isinstance(v, bool), "bool_val", bool),
    types_pb2.DT_UINT32: (lambda v: _integer_in(v, _UINT32), "uint32_val", int),
    types_pb2.DT_UINT64: (lambda v: _integer_in(v, _UINT64), "uint64_val", int),
}


def _decode_base64(value: Any) -> bytes:
    """JsonDecodeBase64Object."""
    if not _is_base64_object(value):
        raise _invalid("JSON Value: ", value_text(value),
                       " not formatted correctly for base64 data")
    try:
        return base64.b64decode(value[BASE64_KEY], validate=True)
    except (binascii.Error, ValueError) as err:
        raise _invalid("Unable to base64 decode") from err


def _fill(value: Any, dtype: int, tensor: tensor_pb2.TensorProto) -> int:
    """FillTensorProto, without recursion: every leaf at the level the shape's rank says, every
    list as long as the shape says; returns the number of values added."""
    shape = [d.size for d in tensor.tensor_shape.dim]
    rank = len(shape)
    check, field, convert = _CONVERSIONS.get(dtype, (None, None, None))
    values: list[Any] = []
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, list):
            if level != rank:
                raise _invalid("JSON Value: ", value_text(item), " found at incorrect level: ",
                               level + 1, " in the JSON DOM. Expected at level: ", rank)
            if isinstance(item, dict):
                if dtype != types_pb2.DT_STRING:
                    raise _type_error(item, dtype)
                values.append(_decode_base64(item))
            elif check is None:
                raise RequestError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"Conversion of JSON Value: {value_text(item)} to type: "
                                   f"{dtype_name(dtype)}")
            elif not check(item):
                raise _type_error(item, dtype)
            else:
                values.append(convert(item))
            continue
        if level >= rank:
            raise _invalid("Encountered list at unexpected level: ", level, " expected < ", rank)
        if len(item) != shape[level]:
            raise _invalid("Encountered list at unexpected size: ", len(item), " at level: ",
                           level, " expected size: ", shape[level])
        stack.extend((element, level + 1) for element in reversed(item))
    if values:
        getattr(tensor, field or "string_val").extend(values)
    return len(values)


def _set_shape(tensor: tensor_pb2.TensorProto, shape: list[int]) -> None:
    tensor.tensor_shape.Clear()
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)


def _shape_text(shape: list[int]) -> str:
    return "[" + ",".join(str(s) for s in shape) + "]"


def _add_instance_item(item: Any, name: str, inputs: Mapping[str, meta_graph_pb2.TensorInfo],
                       sizes: dict[str, int], shapes: dict[str, list[int]],
                       tensors: containers.MessageMap) -> None:
    """AddInstanceItem: one instance's value for input `name`, appended to its tensor."""
    if name not in inputs:
        raise _invalid("JSON object: does not have named input: ", name)
    tensor = tensors[name]
    shape = _dense_shape(item)
    _set_shape(tensor, shape)
    size = _fill(item, inputs[name].dtype, tensor)
    if name not in sizes:
        sizes[name], shapes[name] = size, shape
    elif sizes[name] != size:
        raise _invalid("Expecting tensor size: ", sizes[name], " but got: ", size)
    elif shapes[name] != shape:
        raise _invalid("Expecting shape ", _shape_text(shapes[name]), " but got: ",
                       _shape_text(shape))


def _wrapped(prefix: str, err: RequestError) -> RequestError:
    """A nested error, as absl::Status::ToString prints it inside the outer message."""
    return _invalid(prefix, err.code.name, ": ", err)


def _from_instances(instances: list, inputs: Mapping[str, meta_graph_pb2.TensorInfo],
                    tensors: containers.MessageMap) -> None:
    """FillTensorMapFromInstancesList."""
    if not isinstance(instances[0], dict) and len(inputs) > 1:
        raise _invalid("instances is a plain list, but expecting list of objects as multiple "
                       "input tensors required as per tensorinfo_map")
    objects = _is_element_object(instances[0])
    sizes: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}
    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise _invalid("Expecting object but got list at item ", index,
                               " of input list")
            for name, value in element.items():
                try:
                    _add_instance_item(value, name, inputs, sizes, shapes, tensors)
                except RequestError as err:
                    raise _wrapped(f"Failed to process element: {index} key: {name} of "
                                   "'instances' list. Error: ", err) from err
            if set(element) != set(inputs):
                raise _invalid("Failed to process element: ", index, " of 'instances' list. "
                               "JSON object: ", value_text(element), " keys must be equal to: ",
                               ",".join(sorted(inputs)))
        else:
            if _is_element_object(element):
                raise _invalid("Expecting value/list but got object at item ", index,
                               " of input list")
            try:
                _add_instance_item(element, sorted(inputs)[0], inputs, sizes, shapes, tensors)
            except RequestError as err:
                raise _wrapped(f"Failed to process element: {index} of 'instances' list. "
                               "Error: ", err) from err
    for name, tensor in tensors.items():
        tensor.dtype = inputs[name].dtype
        _set_shape(tensor, [len(instances)] + shapes[name])


def _from_inputs(value: Any, inputs: Mapping[str, meta_graph_pb2.TensorInfo],
                 tensors: containers.MessageMap) -> None:
    """FillTensorMapFromInputsMap."""
    if not isinstance(value, dict) or _is_base64_object(value):
        if len(inputs) > 1:
            raise _invalid("inputs is a plain value/list, but expecting an object as multiple "
                           "input tensors required as per tensorinfo_map")
        named = {sorted(inputs)[0]: value}
    else:
        named = {}
        for name in sorted(inputs):
            if name not in value:
                raise _invalid("Missing named input: ", name, " in 'inputs' object.")
            named[name] = value[name]
    for name, item in named.items():
        tensor = tensors[name]
        tensor.dtype = inputs[name].dtype
        _set_shape(tensor, _dense_shape(item))
        _fill(item, inputs[name].dtype, tensor)


def fill_predict_request(document: dict[str, Any], request: predict_pb2.PredictRequest,
                         signature_inputs) -> Format:
    """FillPredictRequestFromJson, from the parsed body: the signature name into the request's
    model spec, then (with `signature_inputs(name)`, the TensorInfo map of that signature, or
    its error) every input into the request's typed value fields."""
    if "signature_name" in document:
        if not isinstance(document["signature_name"], str):
            raise _invalid("JSON Value: ", value_text(document), " not formatted correctly. "
                           "'signature_name' key must be a string value.")
        request.model_spec.signature_name = document["signature_name"]
    signature = request.model_spec.signature_name
    inputs = signature_inputs(signature)
    if not inputs:
        raise _invalid("Failed to get input map for signature: ", signature or "DEFAULT")
    if "instances" in document:
        if "inputs" in document:
            raise _invalid("JSON Value: ", value_text(document), " Not formatted correctly "
                           "expecting only one of 'inputs' or 'instances' keys to exist ")
        instances = document["instances"]
        if not isinstance(instances, list):
            raise _invalid("JSON Value: ", value_text(document),
                           " Expecting 'instances' to be an list/array")
        if not instances:
            raise _invalid("JSON Value: ", value_text(document), " No values in 'instances' array")
        _from_instances(instances, inputs, request.inputs)
        return Format.ROW
    if "inputs" in document:
        _from_inputs(document["inputs"], inputs, request.inputs)
        return Format.COLUMNAR
    raise _invalid("Missing 'inputs' or 'instances' key")


def _values(alias: str, array: np.ndarray) -> Any:
    """AddTensorValues: nested lists; a string output named *_bytes as {"b64": ...}."""
    if array.dtype.kind in "SO":
        if alias.endswith(BYTES_SUFFIX):
            return np.vectorize(lambda b: {BASE64_KEY: base64.b64encode(b).decode()},
                                otypes=[object])(array).tolist()
        try:
            return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array).tolist()
        except UnicodeDecodeError as err:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"output {alias} is not valid UTF-8; name it *{BYTES_SUFFIX} "
                               "for base64") from err
    return array.tolist()


def response_json(outputs: Mapping[str, np.ndarray], response_format: Format) -> str:
    """MakeJsonFromTensors: {"predictions": one entry per row (an object when there are
    several outputs)} or {"outputs": the tensor, or an object of tensors}."""
    if not outputs:
        raise _invalid("Cannot convert empty tensor map to JSON")
    values = {alias: _values(alias, array) for alias, array in sorted(outputs.items())}
    if response_format is Format.COLUMNAR:
        body = next(iter(values.values())) if len(values) == 1 else values
        return json.dumps({"outputs": body})
    batch = None
    for alias, array in sorted(outputs.items()):  # MakeRowFormatJsonFromTensors' checks.
        if array.ndim == 0:
            raise _invalid("Tensor name: ", alias, " has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise _invalid("Tensor name: ", alias, " has inconsistent batch size: ",
                           array.shape[0], " expecting: ", batch)
        batch = array.shape[0]
    if len(values) == 1:
        return json.dumps({"predictions": next(iter(values.values()))})
    return json.dumps({"predictions": [{alias: rows[i] for alias, rows in values.items()}
                                       for i in range(batch)]})
