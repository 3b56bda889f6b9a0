"""Checked downloads: ``python -m keras_tl.download NAME DIR``.

A replica of Flowers-102 as published (``102flowers.tgz`` holding ``jpg/``, ``imagelabels.mat``,
``setid.mat``), of MIT-67 (no checksums) or a hostile archive is served by a local ``http.server`` on
127.0.0.1, and the table entry is pointed at it.
"""
import dataclasses
import errno
import gzip
import hashlib
import http.server
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import threading
import zipfile

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
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def tar_gz(members, mode="w:gz"):
    """A .tar.gz (a .tar with ``mode="w"``) of ``{name: bytes}``; a ``(tar type, link target)`` value makes a
    link or a special file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                (info.type, info.linkname), content = content, b""
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


@pytest.fixture
def serve(monkeypatch):
    """``serve(files, remotes=None, dataset="flowers102")``: serve ``files`` (``{name: bytes}``) and point the table
    entry of ``dataset`` at them: ``remotes`` with their URLs replaced, else each file with its SHA-256 and size."""
    servers = []

    def start(files, remotes=None, dataset="flowers102"):
        server = Server(files)
        servers.append(server)
        remotes = ([dataclasses.replace(remote, url=server.url(remote.name)) for remote in remotes] if remotes else
                   [downloads.RemoteFile(server.url(name), hashlib.sha256(content).hexdigest(), len(content))
                    for name, content in files.items()])
        monkeypatch.setitem(downloads.DATASETS, dataset,
                            downloads.PublishedDataset("Replica", "http://127.0.0.1/", tuple(remotes)))
        return server

    yield start
    for server in servers:
        server.close()


def mit67_files(train_list=b"kitchen/a.jpg\nbar/b.jpg\n"):
    """MIT-67 as published: ``indoorCVPR_09.tar`` holding ``Images/``, and the two lists."""
    images = {f"Images/{name}": jpeg(seed) for seed, name in enumerate(["kitchen/a.jpg", "bar/b.jpg", "kitchen/c.jpg",
                                                                       "bar/d.jpg"])}
    return {"indoorCVPR_09.tar": tar_gz(images, mode="w"), "TrainImages.txt": train_list,
            "TestImages.txt": b"kitchen/c.jpg\nbar/d.jpg\n"}


def error_lines(captured):
    """The ``error:`` lines of a job's stderr, after checking that it holds no traceback."""
    assert "Traceback" not in captured.err
    return [line for line in captured.err.splitlines() if line.startswith("error:")]


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


SYMLINK, HARD_LINK = tarfile.SYMTYPE, tarfile.LNKTYPE
OUTSIDE = "a member that could be written outside the dataset folder"
LEADS_OUT = "a link that leads outside the dataset folder, or loops, once the archive's links are in place"
HOSTILE = {  # {name: (members, what the error says the archive holds)}
    "parent": ({"../evil": b"evil"}, f"{OUTSIDE} ('../evil')"),
    "absolute": ({"/tmp/evil": b"evil"}, f"{OUTSIDE} ('/tmp/evil')"),
    "link": ({"jpg/evil": (SYMLINK, "../../evil")}, f"{LEADS_OUT} ('jpg/evil' -> '../../evil')"),
    # lexically inside; through x (made after it, x -> .) three levels above the folder
    "chained links": ({"sub/leak": (SYMLINK, "../x/x/x/../../../outside"), "x": (SYMLINK, ".")},
                      f"{LEADS_OUT} ('sub/leak' -> '../x/x/x/../../../outside')"),
    "loop": ({"a": (SYMLINK, "b"), "b": (SYMLINK, "a")}, f"{LEADS_OUT} ('a' -> 'b')"),
    "through a link": ({"jpg": (SYMLINK, "images"), "jpg/evil": b"evil"},
                       "a member written through the link 'jpg' ('jpg/evil')"),
    "hard link": ({"jpg/passwd": (HARD_LINK, "../../etc/passwd")},
                  "a hard link to no file before it ('jpg/passwd' -> '../../etc/passwd')"),
    "FIFO": ({"jpg/image.jpg": jpeg(0), "jpg/pipe": (tarfile.FIFOTYPE, "")}, "a FIFO ('jpg/pipe')"),
    "device": ({"jpg/null": (tarfile.CHRTYPE, "")}, "a character device ('jpg/null')"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_archive_is_one_error_line_and_nothing_is_written(serve, tmp_path, capsys, case):
    members, holds = HOSTILE[case]
    serve({"evil.tar.gz": tar_gz(members)})
    assert download_job.main(["flowers102", str(tmp_path / "data" / "flowers102"), "--quiet"]) == 2
    assert error_lines(capsys.readouterr()) == [f"error: evil.tar.gz holds {holds}; refusing to unpack it. The "
                                                f"file may be damaged or tampered with."]
    assert [path.name for path in tmp_path.iterdir()] == ["data"]
    assert list((tmp_path / "data").iterdir()) == []  # no folder, no staging left


def zip_of(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize("members, message", [
    ({"jpg/a.jpg": jpeg(0), "../evil": b"evil"}, f"evil.zip holds {OUTSIDE} ('../evil'); refusing to unpack it"),
    ({"jpg/zeros": bytes(4 << 20)}, "evil.zip would unpack to 4.0 MiB, "),
])
def test_a_zip_is_checked_the_same_way(serve, tmp_path, members, message):
    serve({"evil.zip": zip_of(members)})
    with pytest.raises(downloads.UnsafeArchive, match=re.escape(message)):
        downloads.download("flowers102", tmp_path / "data" / "flowers102", verbose=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_links_of_two_archives_that_lead_out_together_are_refused(serve, tmp_path):
    # each alone stays inside; with images -> . in place, lists/leak climbs above the folder
    serve({"a.tar.gz": tar_gz({"images": (SYMLINK, ".")}),
           "b.tar.gz": tar_gz({"lists/leak": (SYMLINK, "../images/images/../../outside")})})
    with pytest.raises(downloads.UnsafeArchive, match="'lists/leak' -> '../images/images/../../outside'"):
        downloads.download("flowers102", tmp_path / "data" / "flowers102", verbose=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_links_inside_the_folder_are_kept(serve, tmp_path):
    serve({"ok.tar.gz": tar_gz({"jpg/a.jpg": jpeg(0), "jpg/same.jpg": (SYMLINK, "a.jpg"),
                                "all": (SYMLINK, "jpg"), "jpg/copy.jpg": (HARD_LINK, "jpg/a.jpg")})})
    folder = tmp_path / "flowers102"
    downloads.download("flowers102", folder, verbose=False)
    assert (folder / "all" / "same.jpg").read_bytes() == (folder / "jpg" / "copy.jpg").read_bytes() == jpeg(0)
    assert os.readlink(folder / "all") == "jpg"


def test_an_archive_over_the_cap_is_refused_and_nothing_is_left(flowers, tmp_path):
    flowers()
    with pytest.raises(downloads.UnsafeArchive, match=r"102flowers.tgz would unpack to .* more than the 1000 bytes "
                                                      r"allowed; refusing to unpack it.*max_unpacked_size="):
        downloads.download("flowers102", tmp_path / "flowers102", verbose=False, max_unpacked_size=1000)
    assert list(tmp_path.iterdir()) == []  # no folder, no staging


def test_a_decompression_bomb_is_refused_unless_the_job_is_given_a_cap(serve, tmp_path, capsys):
    serve({"bomb.tar.gz": tar_gz({"jpg/zeros": bytes(4 << 20)})})  # 4 MiB of zeros: about 4 KiB packed
    folder = str(tmp_path / "flowers102")
    assert download_job.main(["flowers102", folder, "--quiet"]) == 2
    [error] = error_lines(capsys.readouterr())
    assert error.startswith("error: bomb.tar.gz would unpack to 4.0 MiB, ")
    assert "(at most 100 times is allowed: a decompression bomb?)" in error
    assert error.endswith("give --max-unpacked-size, which replaces this limit.")
    assert list(tmp_path.iterdir()) == []
    assert download_job.main(["flowers102", folder, "--quiet", "--max-unpacked-size", "0.01"]) == 0
    assert (tmp_path / "flowers102" / "jpg" / "zeros").stat().st_size == 4 << 20


@pytest.mark.parametrize("kept", [b"cut", b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>"])
def test_a_damaged_kept_archive_without_checksum_is_set_aside_and_fetched_again(serve, tmp_path, kept):
    files = mit67_files()
    server = serve(files, downloads.DATASETS["mit67"].files, "mit67")
    archive = tmp_path / ".mit67.download" / ".downloads" / "indoorCVPR_09.tar"
    archive.parent.mkdir(parents=True)
    # what a cut transfer (here between two members: it reads as a shorter tar), or a page saved as the
    # archive, left on an earlier run
    archive.write_bytes(files["indoorCVPR_09.tar"][:5000] if kept == b"cut" else kept)
    reason = "it is an HTML page" if kept != b"cut" else "it ends before its end-of-archive block"
    with pytest.warns(UserWarning, match=f"{archive} does not read to its end as a tar archive .*{reason}.* It was "
                                         f"set aside as {archive}.damaged; downloading it again."):
        record = downloads.download("mit67", tmp_path / "mit67", verbose=False)
    assert [name for name, _ in server.requests] == ["indoorCVPR_09.tar", "TrainImages.txt", "TestImages.txt"]
    assert sorted(path.name for path in (tmp_path / "mit67" / "Images" / "kitchen").iterdir()) == ["a.jpg", "c.jpg"]
    assert record["files"][0] == {"url": server.url("indoorCVPR_09.tar"), "checked": False,
                                  "sha256": hashlib.sha256(files["indoorCVPR_09.tar"]).hexdigest()}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mit67"]


def test_an_html_page_as_a_split_list_is_refused_not_done(serve, tmp_path, capsys):
    page = b"\n<html><head><title>404 Not Found</title></head></html>\n"
    serve(mit67_files(train_list=page), downloads.DATASETS["mit67"].files, "mit67")
    kept = tmp_path / ".mit67.download" / ".downloads" / "TrainImages.txt"
    with pytest.warns(UserWarning, match=f"{kept} is not a list of files: it is an HTML page .* downloading it again"):
        assert download_job.main(["mit67", str(tmp_path / "mit67"), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert error_lines(captured) == [
        f"error: {kept} is not a list of files: it is an HTML page (the server sent a page, an error or a login, "
        f"instead of the file). It was set aside as {kept}.damaged; it came damaged twice: the server may be "
        f"sending an error page instead (see http://127.0.0.1/)."]
    assert "Done" not in captured.out and not (tmp_path / "mit67").exists()
    assert kept.with_name("TrainImages.txt.damaged").read_bytes() == page


def test_an_archive_without_the_paths_the_layout_needs_is_damaged(serve, tmp_path):
    files = {**mit67_files(), "indoorCVPR_09.tar": tar_gz({"images/a.jpg": jpeg(0)}, mode="w")}
    serve(files, downloads.DATASETS["mit67"].files, "mit67")
    with pytest.warns(UserWarning, match="indoorCVPR_09.tar unpacks without Images, which the layout needs"):
        with pytest.raises(downloads.DamagedDownload, match="unpacks without Images.*came damaged twice"):
            downloads.download("mit67", tmp_path / "mit67", verbose=False)


@pytest.mark.parametrize("how", ["chmod", "read-only disk"])
def test_a_folder_that_cannot_be_written_is_one_error_line_naming_it(flowers, tmp_path, capsys, monkeypatch, how):
    flowers()
    parent = tmp_path / "read-only"
    parent.mkdir()
    if how == "chmod":
        parent.chmod(0o555)
        if os.access(parent, os.W_OK):
            parent.chmod(0o755)
            pytest.skip("this user (root) writes in a read-only folder")
    else:
        def read_only(path, *args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    try:
        assert download_job.main(["flowers102", str(parent / "flowers102")]) == 2
    finally:
        parent.chmod(0o755)
    [error] = error_lines(capsys.readouterr())
    assert error.startswith(f"error: Cannot download into {parent / 'flowers102'}: its folder {parent} cannot be "
                            f"written (")
    assert error.endswith("Give a DIR in a folder you can write to.")


def test_a_full_disk_names_the_jobs_own_dir_not_flags_it_lacks(monkeypatch, tmp_path, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "DIR/.flowers102.download/.downloads/102flowers.tgz")
    monkeypatch.setattr(downloads, "download", full)
    assert download_job.main(["flowers102", str(tmp_path / "flowers102"), "--quiet"]) == 2
    assert error_lines(capsys.readouterr()) == [
        "error: No space left on device (writing DIR/.flowers102.download/.downloads/102flowers.tgz). Free some "
        "space there, or give a DIR on another disk, then run the same command again: it resumes."]


def test_a_kept_file_whose_checksum_no_longer_matches_is_not_trusted(flowers, tmp_path):
    flowers()
    kept = tmp_path / ".flowers102.download" / ".downloads" / "102flowers.tgz"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(gzip.compress(b"changed on disk since it was checked"))
    with pytest.raises(ValueError, match="102flowers.tgz: SHA-256 mismatch"):
        downloads.download("flowers102", tmp_path / "flowers102", verbose=False)
    assert not kept.exists()


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
    assert f"its content was checked instead; its SHA-256 is {hashlib.sha256(content).hexdigest()} (kept in" in out
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
