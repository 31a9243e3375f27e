"""inspector view: Netron on loopback, serving a private copy of the model and nothing beside it."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from _netron_helpers import write_conv_bn_relu_onnx

from inspector.errors import InspectorError
from inspector.netron.serve import check_host, netron_server, private_copy, view

TIMEOUT = 20  # seconds for any one request or process step


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An ONNX file with external data, and a secret file beside it that must not be served."""
    folder = tmp_path_factory.mktemp("user_folder")
    path = write_conv_bn_relu_onnx(folder, external_data=True)
    (folder / "secret.txt").write_text("not for Netron")
    return path


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_private_copy_holds_only_the_model_and_its_data(model):
    with private_copy(model) as served:
        folder = served.parent
        assert sorted(p.name for p in folder.iterdir()) == [model.name, model.name + ".data"]
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert served.read_bytes() == model.read_bytes()
        assert (folder / (model.name + ".data")).read_bytes() == (
            model.parent / (model.name + ".data")
        ).read_bytes()
        assert os.stat(model.parent / (model.name + ".data")).st_nlink == 1  # copied, not linked
    assert not folder.exists()


def test_server_answers_on_loopback_with_the_model_only(model):
    with private_copy(model) as served, netron_server(served, "127.0.0.1", 0) as url:
        assert url.startswith("http://127.0.0.1:")
        status, page = _get(url)
        assert status == 200 and b"Netron" in page
        assert f'content="/data/{model.name}"'.encode() in page  # the page is told which file
        assert _get(url + "data/" + model.name) == (200, model.read_bytes())
        data = model.parent / (model.name + ".data")
        assert _get(url + "data/" + data.name) == (200, data.read_bytes())
        assert _get(url + "data/secret.txt")[0] == 404
        assert _get(url + "data/..%2Fsecret.txt")[0] == 404
    with pytest.raises(OSError):
        _get(url)  # stopped


def test_busy_port_is_a_user_error(cli, model):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("view", model, "--port", port, "--no-browser")
    assert result.code == 2
    assert result.err.startswith("inspector: error: port ") and "in use" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_remote_host_needs_allow_remote(cli, model):
    result = cli("view", model, "--host", "0.0.0.0", "--no-browser")
    assert result.code == 2
    assert "--host 0.0.0.0 would let other machines" in result.err
    assert "add --allow-remote if" in result.err
    with pytest.raises(
        InspectorError, match="^host='0.0.0.0' would let .*add allow_remote=True if"
    ):
        view(model, host="0.0.0.0", browser=False)
    assert check_host("0.0.0.0", allow_remote=True) is True
    assert check_host("127.0.0.1", allow_remote=False) is False
    assert check_host("localhost", allow_remote=False) is False
    with pytest.raises(InspectorError):
        check_host("example.org", allow_remote=False)


def test_invalid_onnx_file_is_refused_before_serving(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf model \xff\xff")
    result = cli("view", bad, "--no-browser")
    assert result.code == 2
    assert result.err.startswith(f"inspector: error: {bad}")


def test_view_command_serves_until_ctrl_c(model, tmp_path):
    """The real command in a subprocess: prints the URL, serves, stops on SIGINT, cleans up."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(private_tmp)}
    command = [
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "inspector",
        "view",
        str(model),
        "--no-browser",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        line = process.stdout.readline()  # the server prints its URL once it listens
        assert " at http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        assert _get(url + "data/" + model.name) == (200, model.read_bytes())
        assert _get(url + "data/secret.txt")[0] == 404
        assert any(private_tmp.iterdir())  # the private copy exists while serving
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Netron stopped" in out
    assert not any(private_tmp.iterdir())  # the private copy is gone
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    assert "torch" not in imported  # viewing an .onnx file never loads PyTorch


def test_view_of_a_model_exports_it_and_opens_the_browser(cli, monkeypatch):
    """MODEL: exported first; the browser is sent to the URL, and Ctrl-C is a clean exit 0."""
    import inspector.netron.serve as view_module

    pages = []

    def fake_browser(url):
        pages.append((url, *_get(url + "data/conv_bn_relu.onnx")))
        return True

    def ctrl_c():
        raise KeyboardInterrupt

    monkeypatch.setattr(view_module.webbrowser, "open", fake_browser)
    monkeypatch.setattr(view_module, "wait_for_ctrl_c", ctrl_c)
    result = cli("view", "conv_bn_relu", "--no-cache")
    assert result.code == 0, result.err
    [(url, status, served)] = pages
    assert url.startswith("http://127.0.0.1:") and url in result.out
    assert status == 200 and served.startswith(b"\x08")  # an ONNX ModelProto: ir_version first
    assert "Netron stopped" in result.out


def test_port_out_of_range_is_a_user_error(cli, model):
    result = cli("view", model, "--port", "70000", "--no-browser")
    assert result.code == 2
    assert "1 to 65535" in result.err  # refused while the flags are parsed
    with pytest.raises(InspectorError, match="^port=70000: a port is a number from 1 to 65535"):
        view(model, port=70000, browser=False)


def test_remote_host_is_served_with_a_warning(model, monkeypatch, capsys):
    """--allow-remote: a warning on stderr. The server is faked: tests bind to loopback only."""
    import contextlib

    import inspector.netron.serve as view_module

    bound = []

    @contextlib.contextmanager
    def fake_server(path, host, port):
        bound.append((path.name, host, port))
        yield f"http://{host}:8080/"

    def ctrl_c():
        raise KeyboardInterrupt

    monkeypatch.setattr(view_module, "netron_server", fake_server)
    monkeypatch.setattr(view_module, "wait_for_ctrl_c", ctrl_c)
    view_module.view(model, host="0.0.0.0", port=8080, browser=False, allow_remote=True)
    captured = capsys.readouterr()
    assert bound == [(model.name, "0.0.0.0", 8080)]
    assert captured.err.startswith("inspector: warning: serving on 0.0.0.0")
    assert "http://0.0.0.0:8080/" in captured.out


def test_odd_file_names_are_served_under_a_safe_name(model, tmp_path):
    odd = tmp_path / 'my model #1 "x".onnx'
    odd.write_bytes(model.read_bytes())  # its weights stay in conv_bn_relu.onnx.data
    data = model.name + ".data"
    (tmp_path / data).write_bytes((model.parent / data).read_bytes())
    with private_copy(odd) as served, netron_server(served, "127.0.0.1", 0) as url:
        assert served.name == "my_model__1__x_.onnx"
        assert (served.parent / data).exists()
        status, page = _get(url)
        assert status == 200 and b'content="/data/my_model__1__x_.onnx"' in page
        assert _get(url + "data/" + served.name) == (200, odd.read_bytes())
