"""The console entry points of serving/: `dcgan-serve` (the stand-in for TF Serving, gRPC and
REST, for development and tests; production serves the pushed model with TensorFlow Serving,
docs/serving.md) and `dcgan-generate` (the client).

TensorFlow's start-up lines are quieted before it is imported (dcgan_common/startup.py), hence
the imports inside the functions.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Sequence

from dcgan_common.startup import quiet_startup


def generate() -> int:
    quiet_startup("3")  # A client: its errors come back as gRPC status, not TF logs.
    from serving import client  # pylint: disable=import-outside-toplevel
    return client.main()


def serve() -> int:
    quiet_startup("2")  # A server: TensorFlow's own errors stay in its log.
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    """dcgan-serve: one model directory in TF Serving's layout, on gRPC and REST."""
    # pylint: disable=import-outside-toplevel
    from serving import grpc_server, metrics as metrics_lib
    from serving.api import DEFAULT_MAX_BATCH
    from serving.model_store import ModelStore, NotAvailable
    parser = argparse.ArgumentParser(prog="dcgan-serve", description=main.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-base-path", required=True,
                        help="<serving dir>/<model name>, holding numeric version directories")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--port", type=int, default=8500, help="gRPC (default: %(default)s)")
    parser.add_argument("--rest-port", type=int, default=8501,
                        help="TF Serving's REST API (default: %(default)s; 0: none)")
    parser.add_argument("--monitoring", action="store_true",
                        help=f"Prometheus metrics at REST {metrics_lib.PATH} (TF Serving's "
                             "--monitoring_config_file, serving/config/monitoring.config)")
    parser.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH,
                        help="rows per request, as TF Serving's batching config "
                             "(default: %(default)s, serving/config/batching_parameters.txt)")
    parser.add_argument("--poll-seconds", type=float, default=1.0,
                        help="how often to look for a new version (TF Serving's "
                             "--file_system_poll_wait_seconds)")
    parser.add_argument("--max-load-retries", type=int, default=5,
                        help="retries of a failed load (TF Serving's --max_num_load_retries)")
    parser.add_argument("--load-retry-interval-seconds", type=float, default=60.0,
                        help="between retries (TF Serving's --load_retry_interval_micros)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    store = ModelStore(args.model_name, args.model_base_path, args.poll_seconds,
                       args.max_load_retries, args.load_retry_interval_seconds).start()
    try:
        _serve(args, store, stopped)
    except (NotAvailable, grpc_server.PortInUse) as err:
        # As TF Serving's main.cc: one line, and a failed exit.
        code = "UNKNOWN" if isinstance(err, NotAvailable) else "INVALID_ARGUMENT"
        print(f"Failed to start server. Error: {code}: {err}", flush=True)
        return 255
    finally:
        store.stop()
    return 0


def _serve(args: argparse.Namespace, store, stopped: threading.Event) -> None:
    """Listens once a version serves (as TF Serving: until then nothing listens, and clients
    get UNAVAILABLE), until `stopped`."""
    # pylint: disable=import-outside-toplevel
    from serving import grpc_server, metrics as metrics_lib, rest
    if store.current is None:
        logging.info("waiting for a version of %s in %s before listening", args.model_name,
                     args.model_base_path)
    if not store.wait_for_a_version(stopped):
        return
    metrics = metrics_lib.RequestMetrics() if args.monitoring else None
    server, port = grpc_server.serve(store, args.port, args.max_batch_size, metrics=metrics)
    logging.info("Running gRPC ModelServer at 0.0.0.0:%d (model %s version %d) ...", port,
                 args.model_name, store.current.version)
    rest_server = None
    if args.rest_port:
        try:
            rest_server = rest.serve_rest(store, args.rest_port, args.max_batch_size, metrics)[0]
            logging.info("Exporting HTTP/REST API at:localhost:%d ...", args.rest_port)
        except OSError as err:  # TF Serving (server.cc) logs it and serves gRPC on.
            logging.error("Failed to start HTTP Server at localhost:%d (%s)", args.rest_port,
                          err.strerror or err)
    stopped.wait()
    if rest_server:
        rest_server.shutdown()
    server.stop(grace=5).wait()

if __name__ == "__main__":
    sys.exit(main())
