#!/usr/bin/env bash
# `make image-test`: the image runs the pipeline. Every task of the smoke preset's compiled spec
# runs in the image (TFX's container entrypoint, the pipeline root mounted), then the pushed
# version is loaded and served from inside the image.
#   kfp/image_test.sh IMAGE PYTHON   (PYTHON: the venv's python, which drives dcgan-kfp local-run)
set -euo pipefail
IMAGE=$1 PYTHON=$2
ROOT=$PWD/runs/image-test
rm -rf "$ROOT"
started=$(date +%s)
docker run --rm "$IMAGE" python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor \
  --helpshort >/dev/null
"$PYTHON" -m dcgan_kfp.cli local-run --docker "$IMAGE" --preset smoke \
  --mnist-dir "$PWD/tests/data/mnist_slice" --pipeline-root "$ROOT"
VERSION=$(ls "$ROOT/serving/dcgan_mnist")
[[ $VERSION =~ ^[0-9]+$ ]] || { echo "image-test: no numeric version pushed ($VERSION)"; exit 1; }
docker run --rm -v "$ROOT:$ROOT" "$IMAGE" python -c "
import sys, tensorflow as tf
served = tf.saved_model.load(sys.argv[1]).signatures['serving_default']
images = served(z=tf.random.normal([4, 100]))['images']
assert images.shape == (4, 28, 28, 1) and images.dtype == tf.uint8, images
print('image-test: version', sys.argv[2], 'serves', images.shape[0], 'images from inside the image')
" "$ROOT/serving/dcgan_mnist/$VERSION" "$VERSION"
echo "image-test: passed in $(( $(date +%s) - started )) s"
