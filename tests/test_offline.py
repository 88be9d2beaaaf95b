"""No network at run time: with --mnist-dir, a whole local run connects nowhere but loopback,
and Beam runs on the runner the config names, online or offline."""

import socket

import pytest

from dcgan_common.config import preset
from pipeline import local_runner
from pipeline_helpers import smoke_config

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", None, ""}


@pytest.fixture
def network_guard(monkeypatch):
    """Every name lookup and connection that leaves the machine, refused and recorded."""
    attempts = []
    lookup, connect = socket.getaddrinfo, socket.socket.connect

    def guarded_lookup(host, *args, **kwargs):
        if host not in LOOPBACK:
            attempts.append(("getaddrinfo", host))
            raise socket.gaierror(socket.EAI_NONAME, "blocked by the test")
        return lookup(host, *args, **kwargs)

    def guarded_connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
            attempts.append(("connect", host))
            raise OSError("blocked by the test")
        return connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return attempts


def test_the_guard_records_an_attempt_to_leave_the_machine(network_guard):
    with pytest.raises(OSError):
        socket.create_connection(("github.com", 443), timeout=1)
    assert network_guard == [("getaddrinfo", "github.com")]


def test_every_preset_names_its_beam_runner():
    for name in ("smoke", "default", "spec", "full", "conditional"):
        assert "--runner=FnApiRunner" in preset(name).beam_pipeline_args


def test_a_local_run_with_mnist_dir_connects_nowhere(network_guard, tmp_path, mnist_slice,
                                                     caplog):
    with caplog.at_level("INFO"):
        summary = local_runner.run(smoke_config(mnist_slice, tmp_path))
    assert summary["pushed"]
    assert network_guard == []
    assert "PrismRunner" not in caplog.text and "Downloading prism" not in caplog.text
