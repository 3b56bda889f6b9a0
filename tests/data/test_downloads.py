"""Checked downloads: ``python -m keras_tl.download NAME DIR``.

A replica of Flowers-102 as published (``102flowers.tgz`` holding ``jpg/``, ``imagelabels.mat``,
``setid.mat``) is served by a local ``http.server`` on 127.0.0.1, and the table entry is pointed at it.
"""
import hashlib
import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from keras_tl import data
from keras_tl.data import course_datasets, downloads
from keras_tl.jobs import download as download_job


class Server:
    """Serves ``files`` (``{name: bytes}``); ``ranges`` honours ``Range: bytes=N-`` (206), else sends the whole
    file (200); ``cut`` names files whose first answer stops after half the bytes. ``requests`` lists
    ``(name, Range header or None)``."""

    def __init__(self, files, ranges=True, cut=()):
        self.files, self.requests, self.cut = files, [], set(cut)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                asked = self.headers.get("Range")
                server.requests.append((name, asked))
                body = server.files[name]
                start = int(asked[len("bytes="):-1]) if asked and ranges else 0
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.cut:
                    server.cut.discard(name)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    return  # HTTP/1.0: the connection closes here, short of Content-Length
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def tar_gz(members):
    """A .tar.gz of ``{name: bytes}``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def jpeg(seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def flowers(monkeypatch):
    """``flowers(**server_options)``: the replica served, the flowers102 entry pointed at it; returns the server."""
    files = {"102flowers.tgz": tar_gz({f"jpg/image_{index:05d}.jpg": jpeg(index) for index in range(1, 5)}),
             "imagelabels.mat": b"labels", "setid.mat": b"split ids"}
    servers = []

    def serve(sha256=None, **options):
        server = Server(files, **options)
        servers.append(server)
        remote = [downloads.RemoteFile(server.url(name), (sha256 or {}).get(name, hashlib.sha256(content).hexdigest()),
                                       len(content)) for name, content in files.items()]
        monkeypatch.setitem(downloads.DATASETS, "flowers102",
                            downloads.PublishedDataset("Flowers replica", "http://127.0.0.1/", tuple(remote)))
        return server

    serve.files = files
    yield serve
    for server in servers:
        server.close()


def test_download_checks_and_unpacks_into_the_published_layout(flowers, tmp_path):
    flowers()
    folder = tmp_path / "flowers102"
    record = downloads.download("flowers102", folder, verbose=False)
    assert sorted(path.name for path in folder.iterdir()) == [downloads.RECORD, "imagelabels.mat", "jpg", "setid.mat"]
    assert sorted(path.name for path in (folder / "jpg").iterdir()) == [f"image_{i:05d}.jpg" for i in range(1, 5)]
    assert np.asarray(data.decode_image(folder / "jpg" / "image_00003.jpg")).shape == (8, 8, 3)
    assert (folder / "setid.mat").read_bytes() == b"split ids"
    assert course_datasets.recognise(folder) == "flowers102"
    assert [entry["sha256"] for entry in record["files"]] == [hashlib.sha256(content).hexdigest()
                                                            for content in flowers.files.values()]
    assert json.loads((folder / downloads.RECORD).read_text()) == record
    assert sorted(path.name for path in tmp_path.iterdir()) == ["flowers102"]  # no staging folder left


def test_an_interrupted_download_resumes_from_the_part_with_a_range_request(flowers, tmp_path):
    server = flowers(cut={"102flowers.tgz"})
    folder = tmp_path / "flowers102"
    with pytest.raises(ConnectionError, match="102flowers.tgz.*Run the same command again.*resumes"):
        downloads.download("flowers102", folder, verbose=False)
    size = len(flowers.files["102flowers.tgz"])
    part = tmp_path / ".flowers102.download" / ".downloads" / "102flowers.tgz.part"
    assert part.stat().st_size == size // 2 and not folder.exists()
    downloads.download("flowers102", folder, verbose=False)
    assert server.requests[:2] == [("102flowers.tgz", None), ("102flowers.tgz", f"bytes={size // 2}-")]
    assert len(list((folder / "jpg").iterdir())) == 4


def test_a_server_that_ignores_range_makes_the_download_start_again(flowers, tmp_path):
    server = flowers(ranges=False)
    part = tmp_path / ".flowers102.download" / ".downloads" / "102flowers.tgz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes of an earlier attempt")
    downloads.download("flowers102", tmp_path / "flowers102", verbose=False)
    assert server.requests[0] == ("102flowers.tgz", "bytes=33-")  # asked to resume, answered 200: whole file
    assert len(list((tmp_path / "flowers102" / "jpg").iterdir())) == 4


def test_a_wrong_checksum_is_an_error_and_leaves_no_file(flowers, tmp_path):
    flowers(sha256={"102flowers.tgz": "0" * 64})
    actual = hashlib.sha256(flowers.files["102flowers.tgz"]).hexdigest()
    with pytest.raises(ValueError, match=f"SHA-256 mismatch \\(expected {'0' * 64}, got {actual}\\)"):
        downloads.download("flowers102", tmp_path / "flowers102", verbose=False)
    assert not (tmp_path / "flowers102").exists()
    assert list((tmp_path / ".flowers102.download" / ".downloads").iterdir()) == []  # no .part, no final name


@pytest.mark.parametrize("member, link", [("../evil", None), ("/tmp/evil", None), ("jpg/evil", "../../evil")])
def test_an_archive_member_that_leaves_the_folder_is_refused(monkeypatch, tmp_path, member, link):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(member)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, link
        archive.addfile(info, io.BytesIO(b"" if link else b"evil"))
    server = Server({"evil.tar.gz": buffer.getvalue()})
    monkeypatch.setitem(downloads.DATASETS, "flowers102", downloads.PublishedDataset("Evil", "http://127.0.0.1/", (
        downloads.RemoteFile(server.url("evil.tar.gz"), hashlib.sha256(buffer.getvalue()).hexdigest()),)))
    try:
        with pytest.raises(ValueError, match="would be written outside the dataset folder.*refusing to unpack"):
            downloads.download("flowers102", tmp_path / "data" / "flowers102", verbose=False)
    finally:
        server.close()
    assert not (tmp_path / "evil").exists() and not (tmp_path / "data" / "evil").exists()
    assert not (tmp_path / "data" / "flowers102").exists()


def test_the_job_downloads_once_and_a_second_run_does_nothing(flowers, tmp_path, capsys):
    server = flowers()
    folder = str(tmp_path / "flowers102")
    assert download_job.main(["flowers102", folder, "--quiet"]) == 0
    assert f"Done: python -m keras_tl.fne --dataset flowers102:{folder}" in capsys.readouterr().out
    requests = len(server.requests)
    assert requests == 3
    assert download_job.main(["flowers102", folder]) == 0
    assert "already holds flowers102: nothing to do" in capsys.readouterr().out
    assert len(server.requests) == requests


def test_without_a_published_checksum_the_job_prints_the_one_it_computed(flowers, tmp_path, capsys, monkeypatch):
    server = flowers()
    content = flowers.files["setid.mat"]
    monkeypatch.setitem(downloads.DATASETS, "flowers102", downloads.PublishedDataset("Unchecked", "http://127.0.0.1/",
                                                                                     (downloads.RemoteFile(
                                                                                         server.url("setid.mat")),)))
    assert download_job.main(["flowers102", str(tmp_path / "unchecked"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"its SHA-256 is {hashlib.sha256(content).hexdigest()} (trusted on first use" in out
    assert (tmp_path / "unchecked" / "setid.mat").read_bytes() == content


@pytest.mark.parametrize("argv, message", [
    (["flower102", "DIR"], "error: Unknown dataset name 'flower102': expected one of flowers102, "),
    (["cats_vs_dogs", "DIR"], "error: Kaggle Dogs vs. Cats needs an account to download: sign in at "
                              "https://www.kaggle.com/c/dogs-vs-cats/data"),
])
def test_the_job_says_what_is_wrong_in_one_line(argv, message, capsys):
    assert download_job.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and len(error.strip().splitlines()) == 1
    if argv[0] == "flower102":
        assert "Did you mean flowers102, " in error


def test_offline_the_job_says_so_and_that_the_same_command_resumes(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(downloads.DATASETS, "flowers102", downloads.PublishedDataset("Offline", "http://127.0.0.1/", (
        downloads.RemoteFile("http://127.0.0.1:9/102flowers.tgz", "0" * 64, 10),)))  # port 9: nothing listens
    assert download_job.main(["flowers102", str(tmp_path / "flowers102")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: Could not download http://127.0.0.1:9/102flowers.tgz (")
    assert "the machine may be offline. Run the same command again once it is online" in error
    assert len(error.splitlines()) == 1


def test_the_list_names_every_dataset_without_importing_tensorflow():
    code = ("import sys; from keras_tl.jobs import download; download.main(['--list']); "
            "print('tensorflow' in sys.modules)")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = finished.stdout.splitlines()
    assert finished.returncode == 0 and lines[-1] == "False"
    names = [line.split()[0] for line in lines[2:-1]]
    assert names == list(downloads.DATASETS) and set(names) == set(course_datasets.LOADERS)
    assert "needs an account: https://www.kaggle.com/c/dogs-vs-cats/data" in finished.stdout
    assert "indoorCVPR_09.tar, TrainImages.txt, TestImages.txt" in finished.stdout
