"""Chooses the tf.distribute strategy named in the config."""

from __future__ import annotations

import tensorflow as tf


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`auto`: MirroredStrategy over all local GPUs, else the default strategy.

    Call it before any other TensorFlow op: MultiWorkerMirroredStrategy must
    configure collective ops before the runtime starts.
    """
    if name == "multi_worker":  # The cluster comes from TF_CONFIG.
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "tpu":  # The TPU comes from the environment (TPU_NAME, or a Cloud TPU VM).
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        except ValueError as err:
            raise ValueError(f"strategy 'tpu': no TPU found ({err})") from err
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    raise ValueError(f"unknown strategy {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Only the chief writes the exported model, grids and summaries."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0
