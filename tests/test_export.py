"""The generator SavedModel: both signatures, determinism per seed, refused bad inputs."""

import numpy as np
import pytest
import tensorflow as tf


from trainer.export import export_generator
from dcgan_common.images import to_uint8
from trainer.models import build_generator
from settings import trainer_config


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    generator = build_generator(trainer_config(generator_filters=(16, 8), mixed_precision="float32"))
    path = str(tmp_path_factory.mktemp("export") / "1")
    export_generator(generator, path)
    return generator, tf.saved_model.load(path)


def test_serving_default_maps_z_to_the_generators_uint8_images_and_pngs(exported):
    generator, model = exported
    z = tf.random.normal([6, 100], seed=1)
    outputs = model.signatures["serving_default"](z=z)
    assert outputs["images"].dtype == tf.uint8 and outputs["images"].shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(outputs["images"].numpy(),
                                  to_uint8(generator(z, training=False)).numpy())
    assert outputs["png_bytes"].shape == (6,)
    np.testing.assert_array_equal(tf.io.decode_png(outputs["png_bytes"][5]).numpy(),
                                  outputs["images"][5].numpy())


def test_a_generator_trained_in_bfloat16_is_served_in_float32(tmp_path):
    generator = build_generator(trainer_config(generator_filters=(16, 8),
                                               mixed_precision="mixed_bfloat16"))
    assert any(layer.compute_dtype == "bfloat16" for layer in generator.layers)
    path = str(tmp_path / "1")
    export_generator(generator, path)
    graph = tf.saved_model.load(path).signatures["serving_default"].graph.as_graph_def()
    assert "DT_FLOAT" in str(graph) and "DT_BFLOAT16" not in str(graph)
    served = tf.saved_model.load(path).signatures["serving_default"](z=tf.ones([2, 100]))
    float32 = build_generator(trainer_config(generator_filters=(16, 8), mixed_precision="float32"))
    float32.set_weights(generator.get_weights())
    np.testing.assert_array_equal(served["images"].numpy(),
                                  to_uint8(float32(tf.ones([2, 100]), training=False)).numpy())


def test_generate_is_deterministic_per_seed(exported):
    _, model = exported
    generate = model.signatures["generate"]
    batch = generate(seed=tf.constant([7, 8, 7], tf.int64))["images"].numpy()
    alone = generate(seed=tf.constant([8], tf.int64))["images"].numpy()
    np.testing.assert_array_equal(batch[0], batch[2])  # Same seed, same digit.
    np.testing.assert_array_equal(batch[1], alone[0])  # Independent of the batch around it.
    assert not np.array_equal(batch[0], batch[1])


@pytest.mark.parametrize("bad", [
    {"z": tf.zeros([2, 100], tf.float64)},  # Wrong dtype.
    {"z": tf.zeros([2, 99])},  # Wrong shape.
    {"z": tf.zeros([100])},  # Not batch-major.
])
def test_signature_refuses_bad_inputs(exported, bad):
    _, model = exported
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        model.signatures["serving_default"](**bad)


def test_warmup_records_parse_and_run_on_both_signatures(exported, tmp_path_factory):
    from serving.model_store import read_warmup
    generator, _ = exported
    path = str(tmp_path_factory.mktemp("warm") / "1")
    export_generator(generator, path)
    logs = read_warmup(path)
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "serving_default", "generate"]
    model = tf.saved_model.load(path)
    for log in logs:
        request = log.predict_log.request
        outputs = model.signatures[request.model_spec.signature_name](
            **{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        assert outputs["images"].shape == (4, 28, 28, 1)
