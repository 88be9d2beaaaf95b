"""The class-conditional configuration: shapes, label plumbing, export and refusal of bad labels."""


import keras
import numpy as np
import pytest
import tensorflow as tf


from trainer.data import with_noise
from trainer.export import export_generator
from dcgan_common.features import FAKE_LABELS, REAL_LABELS
from trainer.gan import DCGAN
from trainer.models import build_discriminator, build_generator
from settings import trainer_config, with_settings

CONFIG = trainer_config(generator_filters=(16, 8), discriminator_filters=(8, 16), batch_size=8,
                        conditional=True)


def test_models_take_the_one_hot_label():
    generator, discriminator = build_generator(CONFIG), build_discriminator(CONFIG)
    assert [tuple(i.shape) for i in generator.inputs] == [(None, 100), (None, 10)]
    assert [tuple(i.shape) for i in discriminator.inputs] == [(None, 28, 28, 1), (None, 10)]
    z = tf.random.normal([4, 100], seed=1)
    images = [generator([z, tf.one_hot([d] * 4, 10)], training=False).numpy() for d in (3, 7)]
    assert images[0].shape == (4, 28, 28, 1)
    assert not np.allclose(images[0], images[1])  # The label changes the sample.
    # Label channels beside the image and the first hidden feature map.
    concat_layers = [l for l in discriminator.layers if type(l).__name__ == "ConcatLabelChannels"]
    assert len(concat_layers) == 2
    assert discriminator.layers[[l.name for l in discriminator.layers].index(
        concat_layers[0].name) + 1].input.shape[-1] == 1 + 10


def test_unconditional_models_are_unchanged():
    config = with_settings(CONFIG, conditional=False)
    assert len(build_generator(config).inputs) == 1
    assert not any(type(l).__name__ == "ConcatLabelChannels"
                   for l in build_discriminator(config).layers)


def test_real_batches_keep_their_labels_and_fake_labels_are_uniform():
    examples = tf.data.Dataset.from_tensor_slices((tf.zeros([4000, 28, 28, 1]),
                                                   tf.range(4000, dtype=tf.int64) % 10))
    config = with_settings(CONFIG, batch_size=4000)
    batch = next(iter(with_noise(examples, config)))
    np.testing.assert_array_equal(batch[REAL_LABELS], np.arange(4000) % 10)
    fake = batch[FAKE_LABELS].numpy().ravel()
    assert fake.min() == 0 and fake.max() == 9
    shares = np.bincount(fake, minlength=10) / len(fake)
    assert np.all(np.abs(shares - 0.1) < 0.02)


def test_a_conditional_step_trains_both_networks():
    gan = DCGAN(CONFIG, tf.distribute.get_strategy())
    examples = tf.data.Dataset.from_tensor_slices((tf.random.uniform([8, 28, 28, 1], -1, 1),
                                                   tf.range(8, dtype=tf.int64)))
    before = [np.array(v) for v in gan.generator.trainable_weights]
    metrics = gan.train_step(next(iter(with_noise(examples, CONFIG))))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert all(not np.allclose(a, np.array(b))
               for a, b in zip(before, gan.generator.trainable_weights))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("conditional") / "1")
    export_generator(build_generator(CONFIG), path)
    return tf.saved_model.load(path)


def test_export_takes_labels_and_is_deterministic_per_seed_and_label(exported):
    serving = exported.signatures["serving_default"]
    assert set(serving.structured_input_signature[1]) == {"z", "label"}
    out = serving(z=tf.zeros([3, 100]), label=tf.constant([1, 2, 3], tf.int64))
    assert out["images"].shape == (3, 28, 28, 1) and out["images"].dtype == tf.uint8
    generate = exported.signatures["generate"]
    a = generate(seed=tf.constant([5, 5], tf.int64), label=tf.constant([7, 2], tf.int64))
    b = generate(seed=tf.constant([5], tf.int64), label=tf.constant([7], tf.int64))
    np.testing.assert_array_equal(a["images"][0], b["images"][0])
    assert not np.array_equal(a["images"][0], a["images"][1])  # Same seed, other digit.


@pytest.mark.parametrize("label, message", [([3, 10], "label must be a digit 0-9"),
                                            ([-1, 2], "label must be a digit 0-9"),
                                            ([1], "one entry per row")])
def test_labels_outside_0_9_are_refused_by_the_signature(exported, label, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        exported.signatures["generate"](seed=tf.constant([1, 2], tf.int64),
                                        label=tf.constant(label, tf.int64))


def test_grpc_serves_each_digit_and_refuses_a_bad_label(tmp_path, capsys):
    import grpc
    from serving import client as client_lib
    from serving.model_store import ModelStore
    from serving.grpc_server import serve

    keras.utils.set_random_seed(0)
    export_generator(build_generator(CONFIG), str(tmp_path / "cond" / "1"))
    store = ModelStore("cond", str(tmp_path / "cond")).start()
    server, port = serve(store, 0, host="127.0.0.1")
    client = client_lib.GeneratorClient(f"127.0.0.1:{port}")
    try:
        for signature in client_lib.SIGNATURES:
            per_digit = [client.generate("cond", 3, seed=4, signature=signature, labels=[d])[0]
                         for d in range(10)]
            assert all(images.shape == (3, 28, 28, 1) and images.dtype == np.uint8
                       for images in per_digit)
            assert len({images.tobytes() for images in per_digit}) == 10, signature
        bad = client_lib.build_request("cond", 2, seed=0, z_dim=CONFIG.model.z_dim, labels=[3, 12])
        with pytest.raises(grpc.RpcError) as raised:
            client.stub.Predict(bad, timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "label must be a digit 0-9" in raised.value.details()
        grid = tmp_path / "digits.png"
        assert client_lib.main(["--server", f"127.0.0.1:{port}", "--model", "cond",
                                "--count", "10", "--digits", "0123456789",
                                "--out", str(grid)]) == 0
        # 10 digits in a 4-column grid: 3 rows.
        assert tf.io.decode_png(tf.io.read_file(str(grid))).shape == (3 * 28, 4 * 28, 1)
        with pytest.raises(SystemExit):
            client_lib.main(["--digit", "12", "--out", str(grid)])
    finally:
        client.close()
        server.stop(None)
        store.stop()


def test_the_conditional_preset_trains_is_evaluated_and_pushed_end_to_end(tmp_path, mnist_slice):
    import json

    from pipeline import local_runner
    from pipeline_helpers import smoke_config

    config = smoke_config(mnist_slice, tmp_path).replace_trainer(model={"conditional": True})
    summary = local_runner.run(config)
    assert summary["pushed"] and summary["verdict"] == "BLESSED"
    model = tf.saved_model.load(summary["pushed_model"])
    assert set(model.signatures["generate"].structured_input_signature[1]) == {"seed", "label"}
    with open(summary["evaluation"]) as f:
        metrics = json.load(f)["metrics"]
    assert 0.0 <= metrics["conditional_accuracy"] <= 1.0
    assert len(metrics["per_class_fid"]) == 10
