"""Feature names, shapes and batch keys: the contract between ExampleGen, Transform, the input
pipeline and the models."""

IMAGE_KEY = "image"  # Raw: bytes, 784 uint8 per channel, row-major 28x28xC.
LABEL_KEY = "label"  # Raw: int64, the digit (0-9), or the stacked digits as one number.
IMAGE_XF = "image_xf"  # Transformed: float32 [784 * C] in [-1, 1].
LABEL_XF = "label_xf"  # Transformed: int64.

IMAGE_SIZE = 28
IMAGE_PIXELS = IMAGE_SIZE * IMAGE_SIZE
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)  # One digit; Stacked MNIST has 3 channels.
NUM_CLASSES = 10
PIXEL_HALF_RANGE = 127.5  # uint8 [0, 255] <-> [-1, 1].

# Keys of one training batch (trainer/data.py builds it, trainer/gan.py consumes it): real
# images and labels; the noise (and, for the conditional model, the sampled labels) of every
# G update, [N, generator_steps, ...]; the first one's fakes are also the D fake batch.
REAL = "images"
REAL_LABELS = "labels"
Z = "z"
FAKE_LABELS = "fake_labels"


def transformed_feature_spec(channels: int = 1):
    """How Transform's output records parse (the contract above, as a tf.io spec)."""
    import tensorflow as tf  # Kept local: the constants above need no TensorFlow.

    return {IMAGE_XF: tf.io.FixedLenFeature([IMAGE_PIXELS * channels], tf.float32),
            LABEL_XF: tf.io.FixedLenFeature([], tf.int64)}
