"""Generated JSON bodies and PredictRequests thrown at both front ends of dcgan-serve (real HTTP
and gRPC on loopback): each gets a well-formed answer (a result, or TF Serving's error with a
client-side code) and the server keeps serving. Bounded: DCGAN_FUZZ_EXAMPLES examples per front
end (default 150, derandomized so CI is repeatable; raise it to search longer)."""

import http.client
import json
import math
import os

import grpc
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

from serving_helpers import MODEL

EXAMPLES = int(os.environ.get("DCGAN_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
CLIENT_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.FAILED_PRECONDITION}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (st.lists(children, max_size=4) |
                      st.dictionaries(st.sampled_from(["z", "seed", "b64", "x", "images"]),
                                      children, max_size=3)),
    max_leaves=30)
z_rows = st.lists(st.lists(st.floats(width=32), min_size=100, max_size=100), min_size=1,
                  max_size=3)
signature_names = st.sampled_from(["serving_default", "generate", "x"]) | json_values
bodies = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"instances": z_rows | json_values},
                          optional={"signature_name": signature_names,
                                    "inputs": json_values}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"signature_name": st.just("generate"),
                           "instances": st.lists(st.integers(), min_size=1, max_size=70)}
                          ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"inputs": st.dictionaries(st.sampled_from(["z", "seed", "x"]),
                                                     z_rows | json_values, max_size=2)},
                          optional={"signature_name": signature_names}
                          ).map(lambda v: json.dumps(v).encode()))


def post(server, body: bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", server["rest_port"], timeout=60)
    connection.request("POST", f"/v1/models/{MODEL}:predict", body)
    reply = connection.getresponse()
    status, data = reply.status, reply.read()
    connection.close()
    return status, json.loads(data)


@FUZZ
@given(body=bodies)
def test_rest_answers_every_generated_body(server, body):
    status, reply = post(server, body)
    event(f"HTTP {status}")  # --hypothesis-show-statistics: how deep the bodies reach.
    if status == 200:
        assert set(reply) <= {"predictions", "outputs"} and len(reply) == 1, reply
    else:
        assert status in (400, 404) and isinstance(reply["error"], str), (status, reply)


def tensors():
    dims = st.lists(st.integers(min_value=-2, max_value=10 ** 10) | st.integers(0, 101),
                    max_size=3)
    dtypes = st.sampled_from([types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT64,
                              types_pb2.DT_STRING, types_pb2.DT_UINT8, types_pb2.DT_INVALID,
                              types_pb2.DT_VARIANT, types_pb2.DT_RESOURCE, 999])

    def build(dtype, shape, floats, ints, strings, content):
        tensor = tensor_pb2.TensorProto(dtype=dtype, float_val=floats, int64_val=ints,
                                        string_val=strings, tensor_content=content)
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        return tensor

    return st.builds(build, dtypes, dims, st.lists(st.floats(width=32), max_size=5),
                     st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), max_size=5),
                     st.lists(st.binary(max_size=4), max_size=3), st.binary(max_size=16))


def near_valid():
    """z [n, 100] float or seed [n] int64, n up to past the batch limit: what reaches the
    model."""
    def build(alias, rows, values):
        dtype, shape = ((types_pb2.DT_FLOAT, [rows, 100]) if alias == "z" else
                        (types_pb2.DT_INT64, [rows]))
        tensor = tensor_pb2.TensorProto(dtype=dtype, tensor_shape={"dim": [
            {"size": size} for size in shape]})
        if dtype == types_pb2.DT_FLOAT:
            tensor.float_val.extend(values)
        else:
            tensor.int64_val.extend(int(v) % 2 ** 63 if math.isfinite(v) else 0 for v in values)
        return {alias: tensor}

    return st.builds(build, st.sampled_from(["z", "seed"]), st.integers(0, 66),
                     st.lists(st.floats(width=32), max_size=4))


requests = st.builds(
    lambda name, signature, inputs, outputs: predict_pb2.PredictRequest(
        model_spec={"name": name, "signature_name": signature}, inputs=inputs,
        output_filter=outputs),
    st.sampled_from([MODEL, MODEL, "", "x"]),
    st.sampled_from(["", "serving_default", "generate", "x"]),
    near_valid() | st.dictionaries(st.sampled_from(["z", "seed", "x"]), tensors(), max_size=2),
    st.lists(st.sampled_from(["images", "png_bytes", "x"]), max_size=2))


@FUZZ
@given(request=requests)
def test_grpc_answers_every_generated_request(server, request):
    try:
        response = server["predict"].Predict(request, timeout=60)
    except grpc.RpcError as err:
        event(err.code().name)
        assert err.code() in CLIENT_ERRORS, (err.code(), err.details())
        return
    event("OK")
    assert response.model_spec.name == MODEL and response.outputs


def test_the_server_still_serves_after_the_fuzzing(server):
    status, reply = post(server, json.dumps({"signature_name": "generate",
                                             "instances": [0, 1]}).encode())
    assert status == 200 and len(reply["predictions"]) == 2
    request = predict_pb2.PredictRequest(model_spec={"name": MODEL})
    request.inputs["z"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[math.pi], tensor_shape={"dim": [{"size": 1},
                                                                             {"size": 100}]}))
    assert server["predict"].Predict(request, timeout=60).outputs["images"].int_val
