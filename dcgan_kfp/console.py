"""The console entry point `dcgan-kfp`, quiet at start-up (dcgan_common/startup.py says why)."""

from dcgan_common.startup import quiet_startup


def main() -> int:
    quiet_startup("3")  # Compiling and submitting run no TensorFlow computation.
    from dcgan_kfp import cli  # pylint: disable=import-outside-toplevel
    return cli.main()
