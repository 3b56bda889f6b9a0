"""The demo page, ``python -m keras_tl.demo``: a client on 127.0.0.1 gets the classes that ``load_run`` predicts
(the tests' ``fne_run`` and ``fine_tune_run``, tests/conftest.py); a missing Gradio, run or port is one error."""
import functools
import shutil
import socket
import sys
import types

import numpy as np
import pytest
from PIL import Image

from keras_tl import data
from keras_tl.analysis import trained
from keras_tl.jobs import demo

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(autouse=True)
def gradio_uploads(tmp_path, monkeypatch):
    """The server keeps the uploaded files in the test's folder, not in /tmp/gradio."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    return tmp_path / "uploads"


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 96x64 photograph (the run resizes it to 32 px)."""
    path = tmp_path_factory.mktemp("demo_photo") / "temple.jpg"
    Image.fromarray(data.sample_photos(96)[0][16:80]).save(path, quality=90)
    return path


@functools.lru_cache
def loaded(run_dir):
    """``load_run(run_dir)``, once per run folder."""
    return trained.load_run(run_dir)


def free_port():
    with socket.socket() as probe:
        probe.bind((demo.HOST, 0))
        return probe.getsockname()[1]


def client_for(url, tmp_path):
    return gradio_client.Client(url, verbose=False, download_files=str(tmp_path / "downloads"),
                                analytics_enabled=False)


def check_answer(answer, model, photo):
    """The page's answer for ``photo`` gives ``model.predict``'s two best classes and scores, best first, and for a
    fine_tune run the Grad-CAM over the photo at its own size."""
    scores = model.predict(str(photo))[0]
    best = np.argsort(-scores)[:2]
    if model.kind == "fne":  # a table of SVM scores
        shown = {name: float(score) for name, score in answer["data"]}
    else:  # a Label of probabilities, and the heat map
        answer, heat_map = answer
        shown = {entry["label"]: entry["confidence"] for entry in answer["confidences"]}
        with Image.open(heat_map) as overlay, Image.open(photo) as image:
            assert overlay.size == image.size and overlay.mode == "RGB"
    assert list(shown) == [model.classes[index] for index in best]
    np.testing.assert_allclose(list(shown.values()), scores[best], atol=1e-4)


def test_a_client_gets_the_top_classes_of_load_run_and_an_unreadable_image_is_one_message(fne_run, photo, colours,
                                                                                          tmp_path):
    from keras_tl.analysis import demo_app

    model = loaded(fne_run)
    page = demo_app.build_demo(model, top_k=2)
    page.launch(server_name=demo.HOST, server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = client_for(page.local_url, tmp_path)
        check_answer(client.predict(gradio_client.handle_file(str(photo)), api_name="/predict"), model, photo)
        cut = tmp_path / "cut.png"  # its header reads, its pixels do not
        cut.write_bytes((colours / "test" / "green" / "green1.png").read_bytes()[:200])
        with pytest.raises(gradio_client.exceptions.AppError, match="cut.png is not a readable image"):
            client.predict(gradio_client.handle_file(str(cut)), api_name="/predict")
    finally:
        page.close()


def test_the_job_serves_a_fine_tune_run_with_grad_cam_until_ctrl_c(fine_tune_run, photo, monkeypatch, tmp_path,
                                                                   capsys):
    port, answers = free_port(), []

    def ask_then_interrupt(seconds):  # the job's wait loop: a client asks, then Ctrl-C
        url = f"http://{demo.HOST}:{port}"
        assert f"at {url} " in capsys.readouterr().out
        answers.append(client_for(url, tmp_path).predict(gradio_client.handle_file(str(photo)), api_name="/predict"))
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "time", types.SimpleNamespace(sleep=ask_then_interrupt))
    assert demo.main([str(fine_tune_run), "--port", str(port), "--top-k", "2"]) == 0
    check_answer(answers[0], loaded(fine_tune_run), photo)
    assert "Stopped." in capsys.readouterr().out
    demo.check_port_free(port)  # the page is closed: the port is free again


def one_error(capsys):
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), errors
    return errors[0]


def test_a_busy_port_is_one_error(fne_run, capsys):
    with socket.socket() as taken:
        taken.bind((demo.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert demo.main([str(fne_run), "--port", str(port)]) == 2
    assert f"Port {port} on 127.0.0.1 is busy" in one_error(capsys)


def test_a_port_just_left_by_a_stopped_server_is_free():
    with socket.socket() as server:  # a server that closes its connection first leaves it in TIME_WAIT
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Gradio's server (uvicorn) does
        server.bind((demo.HOST, 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection((demo.HOST, port)) as client:
            connection, _ = server.accept()
            connection.close()
            client.recv(1)
    demo.check_port_free(port)


def test_a_missing_run_folder_or_file_is_one_error(fne_run, tmp_path, capsys):
    assert demo.main([str(tmp_path / "no_such_run"), "--port", str(free_port())]) == 2
    assert "no_such_run does not exist" in one_error(capsys)
    incomplete = shutil.copytree(fne_run, tmp_path / "incomplete")
    (incomplete / "model.keras").unlink()
    assert demo.main([str(incomplete), "--port", str(free_port())]) == 2
    assert "model.keras" in one_error(capsys)


def test_without_gradio_the_job_says_how_to_install_it(fne_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert demo.main([str(fne_run)]) == 2
    assert "pip install -e '.[demo]'" in one_error(capsys)


def test_options_out_of_range_are_one_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        demo.parse_args(["run", "--port", "70000"])
    assert stop.value.code == 2 and "--port must lie within 1 .. 65535; got 70000." in capsys.readouterr().err
