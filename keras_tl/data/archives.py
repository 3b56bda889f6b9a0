"""Unpack a tar or zip archive safely by construction (:func:`unpack_archive`), for :mod:`keras_tl.data.downloads`.

Python's ``tarfile`` filter and ``zipfile`` check each member alone; an archive can still escape
with links that only lead out once a later member is in place (``leak -> x/../../outside``, then
``x -> .``), or fill the disk. Here every member's final place, every link followed, is worked out
before anything is written; links are made last, so nothing is written through one; FIFOs and
devices are refused; the unpacked size is capped. A refusal is an :class:`UnsafeArchive`, a file
that does not read to its end a :class:`DamagedDownload`.
"""
import gzip
import lzma
import os
import pathlib
import tarfile
import zipfile
import zlib

from keras_tl import runs

MAX_UNPACKED_SIZE = 10 << 30  # bytes one archive may unpack to: the largest dataset, Food-101, unpacks to 5 GB
MAX_RATIO = 100  # unpacked bytes per archive byte: images hardly compress, a decompression bomb reaches 1,000
MAX_LINK_FOLLOWS = 40  # links followed to resolve one path, as Linux allows
# Python >= 3.10.12: modes made safe and owners left out (the paths are checked here, before it)
EXTRACT_OPTIONS = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
# what reading a cut or foreign archive raises
READ_ERRORS = (tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error, gzip.BadGzipFile,
               lzma.LZMAError, zipfile.BadZipFile)
HTML_PAGE = "an HTML page (the server sent a page, an error or a login, instead of the file)"
TAR_KINDS = {tarfile.FIFOTYPE: "FIFO", tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device"}


class UnsafeArchive(ValueError):
    """An archive refused before anything of it is written: a member or link that would leave the folder,
    a FIFO or device, or more unpacked bytes than allowed."""


class DamagedDownload(ValueError):
    """A downloaded file whose content is not what it should be: an archive that does not read to its end
    or lacks the paths the layout needs, a list that is not text (an HTML error page)."""


def is_html(head):
    return head[:1024].lstrip()[:1] == b"<"  # no list, no archive starts so


def unpack_archive(path, folder, max_unpacked_size=None):
    """Unpack the tar or zip archive ``path`` into ``folder``, safe by construction.

    Before anything is written, every member's place is worked out (:func:`_check_members`): it must stay in
    ``folder`` with every link followed (the archive's, all in place, and any already in ``folder``), be a
    file, folder or link (no FIFO, no device), and the archive must unpack to at most ``max_unpacked_size``
    bytes (see :func:`keras_tl.data.downloads.download`); else an :class:`UnsafeArchive`. Then the files and folders are written, and
    the links last, so that nothing is written through a link. An archive that does not read to its end is a
    :class:`DamagedDownload`.
    """
    path, folder = pathlib.Path(path), pathlib.Path(folder)
    kind = "zip" if path.name.endswith(".zip") else "tar"
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as archive:
                members = [(info.filename, "folder" if info.is_dir() else "file", info.file_size, "")
                           for info in archive.infolist()]
                links = _check_members(path, folder, members, max_unpacked_size)
                archive.extractall(folder)
        else:
            with tarfile.open(path) as archive:
                members = archive.getmembers()
                links = _check_members(path, folder, [(member.name, _tar_kind(member), member.size, member.linkname)
                                                      for member in members], max_unpacked_size)
                archive.extractall(folder, [member for member in members if not member.issym()], **EXTRACT_OPTIONS)
                # a tar cut between two members reads as a shorter one: only the zero block after the last tells
                # (read now, a forward seek: a backward one decompresses a .tar.gz again from its start)
                archive.fileobj.seek(archive.offset)
                if archive.fileobj.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
                    raise tarfile.ReadError("it ends before its end-of-archive block")
    except READ_ERRORS as error:
        with open(path, "rb") as file:
            html = f": it is {HTML_PAGE}" if is_html(file.read(1024)) else ""
        reason = str(error).splitlines()[0].rstrip(":")
        raise DamagedDownload(f"{path} does not read to its end as a {kind} archive ({type(error).__name__}: "
                              f"{reason}){html}.") from None
    for place, target in links.items():
        link = folder.joinpath(*place)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)


def _tar_kind(member):
    if member.isreg():
        return "file"
    if member.isdir():
        return "folder"
    if member.issym():
        return "link"
    if member.islnk():
        return "hard link"
    return TAR_KINDS.get(member.type, f"special file (tar type {member.type!r})")


def _check_members(archive, folder, members, max_unpacked_size):
    """The links among ``members`` (``(name, kind, size, link target)``, in the archive's order) as
    ``{place: target}``, once every member is known to land inside ``folder``; else an :class:`UnsafeArchive`.

    A place is a tuple of names under ``folder``. Links are made last, so a member whose place passes
    through a link (the archive's or one already in ``folder``) is refused, and a link's target is
    resolved with every link in place. A hard link must name a file that comes before it.
    """
    links = {place: target for name, kind, _, target in members if kind == "link" and (place := _place(name))}
    link_at = _link_finder(folder, links)
    files, total = {}, 0
    for name, kind, size, target in members:
        if kind not in ("file", "folder", "link", "hard link"):
            raise _unsafe(archive, f"a {kind} ({name!r})")
        place = _place(name)
        if place is None or not place and kind != "folder":
            raise _unsafe(archive, f"a member that could be written outside the dataset folder ({name!r})")
        ends = range(1, len(place) if kind == "link" else len(place) + 1)
        through = next((place[:end] for end in ends if link_at(place[:end]) is not None), None)
        if through:
            raise _unsafe(archive, f"a member written through the link {'/'.join(through)!r} ({name!r})")
        if kind == "link" and _resolved(place[:-1], target, link_at) is None:
            raise _unsafe(archive, f"a link that leads outside the dataset folder, or loops, once the archive's "
                                   f"links are in place ({name!r} -> {target!r})")
        if kind == "hard link":
            if _place(target) not in files:
                raise _unsafe(archive, f"a hard link to no file before it ({name!r} -> {target!r})")
            size = files[_place(target)]
        if kind in ("file", "hard link"):
            files[place] = size
            total += size
    _check_size(archive, total, max_unpacked_size)
    return links


def _place(name):
    """Member path ``name`` as a tuple of names; None when it is absolute or holds ``..``."""
    parts = name.split("/")
    if name.startswith("/") or ".." in parts:
        return None
    return tuple(part for part in parts if part not in ("", "."))


def _link_finder(folder, links):
    """``link_at(place)``: the target of the link at ``place``, one of ``links`` or one in ``folder``; else None."""
    def link_at(place):
        if place in links:
            return links[place]
        path = folder.joinpath(*place)
        return os.readlink(path) if path.is_symlink() else None

    return link_at


def _resolved(start, target, link_at):
    """The place that link ``target``, read in folder ``start``, leads to once every link on the way
    is followed (``link_at``); None when it leaves the folder or loops."""
    if target.startswith("/"):
        return None
    place, names, follows = list(start), target.split("/")[::-1], 0  # the next name to walk is last
    while names:
        name = names.pop()
        if name == "..":
            if not place:
                return None
            place.pop()
        elif name not in ("", "."):
            place.append(name)
            link = link_at(tuple(place))
            if link is not None:
                follows += 1
                if follows > MAX_LINK_FOLLOWS or link.startswith("/"):
                    return None
                place.pop()
                names.extend(link.split("/")[::-1])
    return tuple(place)


def _check_size(archive, total, max_unpacked_size):
    """An :class:`UnsafeArchive` when ``total`` unpacked bytes pass the cap (see :func:`keras_tl.data.downloads.download`)."""
    cap = MAX_UNPACKED_SIZE if max_unpacked_size is None else max_unpacked_size
    size = os.path.getsize(archive)
    if total > cap:
        raise UnsafeArchive(f"{archive.name} would unpack to {runs.readable_size(total)}, more than the "
                            f"{runs.readable_size(cap)} allowed; refusing to unpack it. If you trust the file, "
                            f"give a larger max_unpacked_size=.")
    if max_unpacked_size is None and total > MAX_RATIO * size:
        raise UnsafeArchive(f"{archive.name} would unpack to {runs.readable_size(total)}, {total / size:,.0f} "
                            f"times its {runs.readable_size(size)}, where images hardly compress (at most "
                            f"{MAX_RATIO} times is allowed: a decompression bomb?); refusing to unpack it. If you "
                            f"trust the file, give max_unpacked_size=, which replaces this limit.")


def _unsafe(archive, what):
    return UnsafeArchive(f"{archive.name} holds {what}; refusing to unpack it. The file may be damaged or "
                         f"tampered with.")


def check_links(folder):
    """An :class:`UnsafeArchive` when a link in ``folder`` leads outside it, or loops, once every link in it
    is in place (the links of two archives can combine)."""
    link_at = _link_finder(folder, {})
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = pathlib.Path(root, name)
            place = path.relative_to(folder).parts
            if path.is_symlink() and _resolved(place[:-1], os.readlink(path), link_at) is None:
                raise UnsafeArchive(f"The downloaded files hold a link that leads outside the dataset folder, or "
                                    f"loops, once the links of all of them are in place ({'/'.join(place)!r} -> "
                                    f"{os.readlink(path)!r}); refusing them. The files may be damaged or "
                                    f"tampered with.")
