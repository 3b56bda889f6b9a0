"""Download a course dataset's published files, checked, into the layout ``load_dataset("NAME:PATH")`` reads.

:data:`DATASETS` lists, per name of :mod:`keras_tl.data.course_datasets`, the files as their authors
publish them, with their size and SHA-256 where one is published: tfds's ``checksums.tsv`` files
(``tensorflow_datasets/datasets/*/checksums.tsv``, ``url_checksums/*.txt``) record them. Where none
is (MIT-67), a file is checked by its content instead: an archive must read to its end as the
archive its name says and hold the paths the layout needs, a list must be text (not an HTML error
page). A file that fails is set aside as ``<file>.damaged`` with a warning and fetched once more.
The SHA-256 computed is kept in the folder's record.

:func:`download` makes ``folder`` in one go: every file is streamed to ``<file>.part`` (an
interrupted download resumes with an HTTP ``Range`` request), checked against its SHA-256 before
it gets its name, then unpacked (archives) or moved (``.mat``, ``.txt``) into a staging folder
beside ``folder``. Archives unpack safely by construction (:func:`unpack_archive`): every member's
final place, links followed, is worked out before anything is written, and links are made last, so
nothing is written through one; a member or link that would leave the folder, a FIFO or a device, or
an archive that unpacks to more than its cap is refused, and the staging folder is removed. The
staging folder becomes ``folder`` by one rename, with :data:`RECORD` inside, so ``folder`` is either
absent or complete, and a complete one is never downloaded again.
"""
import dataclasses
import errno
import http.client
import json
import os
import pathlib
import shutil
import urllib.error
import urllib.parse
import urllib.request
import warnings

from keras_tl import messages, runs
from keras_tl.data.archives import HTML_PAGE, DamagedDownload, UnsafeArchive, check_links, is_html, unpack_archive

RECORD = ".keras_tl_download.json"  # in a finished folder: what was downloaded, and each file's SHA-256
CHUNK = 1 << 20  # bytes read at a time
TIMEOUT = 60  # seconds without an answer before a download counts as interrupted
MIB = float(1 << 20)



@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One published file: its ``url``, ``sha256`` (None where none is published) and ``size`` in bytes.

    An archive (``.tar``, ``.tgz``, ``.tar.gz``, ``.zip``) is unpacked into the dataset's folder, and
    then the ``nested`` archives it holds (paths inside it) where they lie; it must unpack to the paths
    ``provides`` names (the ones the layout needs). Another file is moved there.
    """

    url: str
    sha256: str = None
    size: int = None
    nested: tuple = ()
    provides: tuple = ()

    @property
    def name(self):
        return pathlib.PurePosixPath(urllib.parse.urlparse(self.url).path).name


@dataclasses.dataclass(frozen=True)
class PublishedDataset:
    """A dataset's title, its page, and its files (none where the page needs an account to download)."""

    title: str
    page: str
    files: tuple = ()


FLOWERS = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
PETS = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
CUB = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
CALTECH101 = "https://data.caltech.edu/records/mzrjq-6wc02"
DTD = "https://www.robots.ox.ac.uk/~vgg/data/dtd/"
DOGS = "http://vision.stanford.edu/aditya86/ImageNetDogs/"
MIT67 = "http://web.mit.edu/torralba/www/"
DATASETS = {
    # jpg/, imagelabels.mat, setid.mat
    "flowers102": PublishedDataset("Oxford Flowers-102 (Nilsback & Zisserman 2008)", FLOWERS, (
        RemoteFile(FLOWERS + "102flowers.tgz",
                   "2d01ecc807db462958cfe3d92f57a8c252b4abd240eb955770201e45f783b246", 344862509,
                   provides=("jpg",)),
        RemoteFile(FLOWERS + "imagelabels.mat",
                   "4903e94206bac23bf772aadf06451916df56b58fc483a62db32a97b82656651d", 502),
        RemoteFile(FLOWERS + "setid.mat",
                   "46b8678f91fd95d3c8f4feab80d271a6c834a1dd896fe29fd3e6ad9ce5c8dccd", 14989))),
    # images/, annotations/
    "oxford_pets": PublishedDataset("Oxford-IIIT Pets (Parkhi et al. 2012)", PETS, (
        RemoteFile("https://thor.robots.ox.ac.uk/~vgg/data/pets/images.tar.gz",
                   "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d", 791918971,
                   provides=("images",)),
        RemoteFile("https://thor.robots.ox.ac.uk/~vgg/data/pets/annotations.tar.gz",
                   "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91", 19173078,
                   provides=("annotations/trainval.txt", "annotations/test.txt")))),
    # Images/, train_list.mat, test_list.mat, file_list.mat
    "stanford_dogs": PublishedDataset("Stanford Dogs (Khosla et al. 2011)", DOGS, (
        RemoteFile(DOGS + "images.tar",
                   "a443fc2f9a851aa1a7b8e4fa4af94b8459fce2c9f5a2f4dd4669cf9673a4ec58", 793579520,
                   provides=("Images",)),
        RemoteFile(DOGS + "lists.tar",
                   "34b47cacd9a98b5d150e084f24d29391c084c55272295ec65c85651bc35f4d6c", 481280,
                   provides=("train_list.mat", "test_list.mat", "file_list.mat")))),
    # CUB_200_2011/ (images/, images.txt, train_test_split.txt, ...)
    "cub200": PublishedDataset("CUB-200-2011 (Wah et al. 2011)", CUB, (
        RemoteFile("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
                   "0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081", 1150585339,
                   provides=("CUB_200_2011/images", "CUB_200_2011/images.txt")),)),
    # caltech-101/101_ObjectCategories/ (the zip holds it as a .tar.gz)
    "caltech101": PublishedDataset("Caltech-101 (Fei-Fei et al. 2004)", CALTECH101, (
        RemoteFile(CALTECH101 + "/files/caltech-101.zip?download=1",
                   "331234750fc7f77520e50d9565e8b6907b03565e30320da1401130db08c61f91", 137414764,
                   nested=("caltech-101/101_ObjectCategories.tar.gz",),
                   provides=("caltech-101/101_ObjectCategories",)),)),
    # food-101/ (images/, meta/)
    "food101": PublishedDataset("Food-101 (Bossard et al. 2014)",
                                "https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/", (
        RemoteFile("http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
                   "d97d15e438b7f4498f96086a4f7e2fa42a32f2712e87d3295441b2b6314053a4", 4996278331,
                   provides=("food-101/images", "food-101/meta")),)),
    # dtd/ (images/, labels/, imdb/)
    "dtd": PublishedDataset("Describable Textures (Cimpoi et al. 2014)", DTD, (
        RemoteFile(DTD + "download/dtd-r1.0.1.tar.gz",
                   "e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205", 625239812,
                   provides=("dtd/images", "dtd/labels")),)),
    # Images/, TrainImages.txt, TestImages.txt; no checksum is published
    "mit67": PublishedDataset("MIT Indoor-67 (Quattoni & Torralba 2009)", MIT67 + "indoor.html", (
        RemoteFile("http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar", provides=("Images",)),
        RemoteFile(MIT67 + "TrainImages.txt"),
        RemoteFile(MIT67 + "TestImages.txt"))),
    "cats_vs_dogs": PublishedDataset("Kaggle Dogs vs. Cats", "https://www.kaggle.com/c/dogs-vs-cats/data"),
}


def published(name):
    """The :class:`PublishedDataset` of ``name``; an unknown name or one that needs an account is a ``ValueError``."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset name {name!r}: expected one of {', '.join(DATASETS)}."
                         + messages.did_you_mean(name, DATASETS))
    dataset = DATASETS[name]
    if not dataset.files:
        raise ValueError(f"{dataset.title} needs an account to download: sign in at {dataset.page}, accept the "
                         f"rules, download train.zip and unzip it; then load it as {name}:FOLDER.")
    return dataset


def is_downloaded(folder):
    """Whether ``folder`` holds a finished download (its :data:`RECORD`)."""
    return (pathlib.Path(folder) / RECORD).is_file()


def download(name, folder, verbose=True, max_unpacked_size=None):
    """Download dataset ``name`` into ``folder`` (see the module docstring) and return its record:
    ``{"name", "title", "page", "files": [{"url", "sha256", "checked"}]}``; ``checked`` is False where no SHA-256 is
    published (the file was checked by its content). A finished ``folder`` is returned as it is.

    ``max_unpacked_size``: the bytes one archive may unpack to; by default :data:`keras_tl.data.archives.MAX_UNPACKED_SIZE`, and at
    most :data:`keras_tl.data.archives.MAX_RATIO` times the archive's size (a value given replaces both limits).

    Network failures raise ``ConnectionError`` (the same call resumes); a place that cannot be written
    ``PermissionError``; a wrong checksum, a file damaged twice (:class:`DamagedDownload`), a refused
    archive (:class:`UnsafeArchive`: the staging folder is removed) or a ``folder`` that already holds
    other files raise ``ValueError``.
    """
    dataset = published(name)
    folder = pathlib.Path(folder).expanduser().absolute()
    if is_downloaded(folder):
        return json.loads((folder / RECORD).read_text())
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"{folder} already holds files but no finished download; give a new or empty folder, so "
                         f"that nothing in it is overwritten.")
    staging = folder.with_name(f".{folder.name}.download")
    _make_writable_folder(staging / ".downloads", folder)
    files = []
    try:
        for remote in dataset.files:
            done = staging / ".downloads" / f"{remote.name}.done"  # unpacked or moved into staging
            if not done.is_file():
                done.write_text(_fetch_and_install(remote, staging, dataset.page, verbose, max_unpacked_size) + "\n")
            files.append({"url": remote.url, "sha256": done.read_text().strip(),
                          "checked": remote.sha256 is not None})
        check_links(staging)  # the links of every file together
    except UnsafeArchive:
        shutil.rmtree(staging)
        raise
    record = {"name": name, "title": dataset.title, "page": dataset.page, "files": files}
    runs.write_json(staging / RECORD, record)
    if folder.exists():
        folder.rmdir()  # empty: checked above
    os.replace(staging, folder)
    shutil.rmtree(folder / ".downloads")  # only markers are left in it
    return record


def _make_writable_folder(path, folder):
    """Make ``path`` (beside ``folder``), or raise ``PermissionError`` naming ``folder`` where it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        reason = None if os.access(path, os.W_OK) else "read-only"
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        reason = error.strerror
    if reason:
        raise PermissionError(f"Cannot download into {folder}: its folder {folder.parent} cannot be written "
                              f"({reason}; the download is made beside {folder.name} and renamed to it). Give a "
                              f"DIR in a folder you can write to.")


def _fetch_and_install(remote, staging, page, verbose, max_unpacked_size):
    """The SHA-256 of ``remote`` once it is fetched (:func:`_fetch`) and installed in ``staging`` (:func:`_install`).

    A file whose content fails :func:`_install`'s checks (a cut archive, an HTML error page) is set aside as
    ``<name>.damaged``; without a published checksum it is fetched once more, with a warning naming it.
    With one, fetching it again would bring the same bytes, and so would a second failure.
    """
    path = staging / ".downloads" / remote.name
    for attempt in (1, 2):
        sha256 = _fetch(remote, path, page, verbose)
        try:
            _install(path, remote, staging, max_unpacked_size)
        except DamagedDownload as error:
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
            if remote.sha256 is None and attempt == 1:
                warnings.warn(f"{error} It was set aside as {aside}; downloading it again.", stacklevel=4)
                continue
            why = (f"its SHA-256 is the published one, so the table in {__name__} is wrong: please report it"
                   if remote.sha256 else "it came damaged twice: the server may be sending an error page instead")
            raise DamagedDownload(f"{error} It was set aside as {aside}; {why} (see {page}).") from None
        path.unlink(missing_ok=True)  # an archive (a plain file was moved)
        return sha256


def _fetch(remote, path, page, verbose):
    """The SHA-256 of ``path``, the download of ``remote``: kept from an earlier run, or grown in ``path.part``
    (resumed where one is left) and renamed, once its checksum (where one is published) is right."""
    fetched = path
    if not path.is_file():
        fetched = path.with_name(path.name + ".part")
        offset = fetched.stat().st_size if fetched.exists() else 0
        if remote.size is None or offset < remote.size:
            _stream(remote.url, fetched, offset, remote.name, page, verbose)
    actual = runs.file_digest(fetched)
    if remote.sha256 is not None and actual != remote.sha256:
        fetched.unlink()
        raise ValueError(f"{remote.name}: SHA-256 mismatch (expected {remote.sha256}, got {actual}); the download "
                         f"was removed. Run the same command again; if it fails again, the file at {remote.url} "
                         f"has changed: see {page}.")
    os.replace(fetched, path)
    return actual


def _stream(url, part, offset, description, page, verbose):
    """Append ``url``'s bytes from ``offset`` to ``part`` (from 0 where the server ignores ``Range``)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            if response.status != 206:  # a whole file: start again
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else None
            with open(part, "ab" if offset else "wb") as out, messages.progress_bar(
                    total and total / MIB, description, unit="MiB", verbose=verbose,
                    initial=offset / MIB) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk) / MIB)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # nothing left to send: the part is whole
            return
        raise ConnectionError(f"{url}: the server answered HTTP {error.code} ({error.reason}); the file may have "
                              f"moved (see {page}), or try again later.") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
        have = runs.readable_size(part.stat().st_size if part.exists() else 0)
        raise ConnectionError(f"Could not download {url} ({getattr(error, 'reason', None) or error!r}): the machine "
                              f"may be offline. Run the same command again once it is online: it resumes from the "
                              f"{have} already downloaded.") from None
    if total is not None and part.stat().st_size < total:
        raise ConnectionError(f"The connection closed after {runs.readable_size(part.stat().st_size)} of "
                              f"{runs.readable_size(total)} of {url}. Run the same command again: it resumes.")


def _install(path, remote, staging, max_unpacked_size):
    """Unpack archive ``path`` (then its ``nested`` archives) into ``staging``, or move a plain file there,
    once its content is checked (else a :class:`DamagedDownload`): an archive reads to its end and unpacks
    to the paths ``remote.provides`` names; a ``.txt`` list is text, not an HTML page.

    An archive goes to a temporary folder first, and each of its top-level entries is renamed into
    ``staging``, so an interrupted or refused unpack leaves no half-unpacked entry there.
    """
    if not _is_archive(path.name):
        if path.suffix == ".txt":
            _check_text(path)
        os.replace(path, staging / remote.name)
        return
    unpacking = staging / ".downloads" / f"{remote.name}.unpacking"
    shutil.rmtree(unpacking, ignore_errors=True)  # what an interrupted unpack left
    try:
        unpack_archive(path, unpacking, max_unpacked_size)
        for nested in remote.nested:
            unpack_archive(unpacking / nested, (unpacking / nested).parent, max_unpacked_size)
            (unpacking / nested).unlink()
        missing = [entry for entry in remote.provides if not (unpacking / entry).exists()]
        if missing:
            raise DamagedDownload(f"{path} unpacks without {', '.join(missing)}, which the layout needs.")
    except ValueError:
        shutil.rmtree(unpacking, ignore_errors=True)
        raise
    for entry in unpacking.iterdir():
        target = staging / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # staging is ours: an entry of an earlier, interrupted attempt
        os.replace(entry, target)
    unpacking.rmdir()


def _is_archive(name):
    return name.endswith((".tar", ".tgz", ".tar.gz", ".zip"))


def _check_text(path):
    """A :class:`DamagedDownload` unless ``path`` is UTF-8 text, not an HTML page."""
    content = path.read_bytes()
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DamagedDownload(f"{path} is not a list of files: byte {error.start} is not UTF-8 text.") from None
    if is_html(content):
        raise DamagedDownload(f"{path} is not a list of files: it is {HTML_PAGE}.")


