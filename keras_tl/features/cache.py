"""The locked, sharded, resumable disk cache of features: one ``.npy`` file per entry.

An entry holds the (images, features) float32 features of one image set, under a key that
:meth:`keras_tl.features.extraction.FeatureExtractor.cache_key` derives from everything they
depend on. :class:`FeatureCache` names its files and keeps them sound:

- **resumable**: the features are written through a memory map into ``<key>.partial.npy``, and
  ``<key>.done`` counts the images finished; an interrupted run starts after them, and a finished
  entry is renamed ``<key>.npy``, so a half-written array never looks finished;
- **locked**: the writer holds ``<key>.lock`` (``filelock``), so a second run on the same entry
  waits for the first and reuses its file instead of writing the same file at the same time;
- **sharded**: ``shard=(I, N)`` runs (Slurm arrays, several machines) write the contiguous part
  :func:`shard_rows` of the rows into an entry of its own, ``<key>.rows-<start>-<stop>``
  (:func:`part_key`); whoever writes the whole entry copies the rows its finished parts hold.

:func:`keras_tl.features.extraction.extract_features` fills the entries.
"""
import os
import pathlib
import re
import warnings

import numpy as np

from keras_tl.runs import atomic_path, check_free_space


def shard_rows(size, shard, batch_size):
    """``(start, stop)``: the rows of part ``I`` of ``N`` (``shard=(I, N)``) of ``size`` images.

    The parts are contiguous and cover the images; every boundary is a multiple of ``batch_size``,
    so each batch of a part holds the images it holds when all are extracted in one run.
    """
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
        raise ValueError(f"shard={shard!r} is not (I, N) with 0 <= I < N: part I of N parts.")
    batches = -(-size // batch_size)
    return (min(index * batches // count * batch_size, size),
            min((index + 1) * batches // count * batch_size, size))


def part_key(key, start, stop):
    """The cache key of the part of entry ``key`` that holds rows ``start..stop-1``."""
    return f"{key}.rows-{start}-{stop}"


class FeatureCache:
    """The files of one cache entry: ``<key>.npy`` when finished; ``<key>.partial.npy`` and
    ``<key>.done`` (images finished) while it is written; ``<key>.lock`` held by the writer.

    A damaged entry (a final or partial array of the wrong shape, an unreadable ``.done``) is
    reported, set aside as ``*.damaged`` and rebuilt, never silently reused. The parts of an
    entry (:meth:`part`, written by ``shard=`` runs) are entries of their own, named
    ``<key>.rows-<start>-<stop>``.
    """

    def __init__(self, cache_dir, key, shape):
        self.folder = pathlib.Path(cache_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key, self.shape = key, tuple(shape)
        self.final = self.folder / f"{key}.npy"
        self.partial = self.folder / f"{key}.partial.npy"
        self.done_marker = self.folder / f"{key}.done"
        self.lock_file = self.folder / f"{key}.lock"

    def lock(self):
        """An inter-process lock on this entry (``filelock``): a second run waits for the first."""
        from filelock import FileLock

        return FileLock(str(self.lock_file))

    def load_final(self):
        """The finished array (memory-mapped), or None when absent or damaged."""
        if not self.final.is_file():
            return None
        try:
            features = np.load(self.final, mmap_mode="r")
            if features.shape == self.shape and features.dtype == np.float32:
                return features
            reason = f"shape {features.shape} {features.dtype}, expected {self.shape} float32"
        except (ValueError, OSError, EOFError) as error:
            reason = str(error)
        self._set_aside(self.final, reason)
        return None

    def open_partial(self):
        """``(array, images done)``: the partial array to write into, resumed where it is sound."""
        done = self._read_done()
        if done:
            try:
                features = np.lib.format.open_memmap(self.partial, mode="r+")
                if features.shape == self.shape and features.dtype == np.float32:
                    return features, done
                reason = f"shape {features.shape}, expected {self.shape}"
            except (ValueError, OSError, EOFError) as error:
                reason = str(error)
            self._set_aside(self.partial, reason)
            done = 0
        check_free_space(self.folder, 4 * int(np.prod(self.shape)) + 4096)  # float32, and the .npy header
        return np.lib.format.open_memmap(self.partial, mode="w+", dtype=np.float32, shape=self.shape), done

    def mark_done(self, rows):
        """Record ``rows`` finished images (written to a temporary name and renamed)."""
        with atomic_path(self.done_marker) as temporary:
            temporary.write_text(str(rows))

    def finish(self, features):
        """Flush ``features``, rename the partial array onto the final name, remove the marker."""
        features.flush()
        del features
        os.replace(self.partial, self.final)
        self.done_marker.unlink(missing_ok=True)

    def part(self, start, stop):
        """The entry of rows ``start..stop-1`` of this one."""
        return FeatureCache(self.folder, part_key(self.key, start, stop), (stop - start,) + self.shape[1:])

    def finished_parts(self):
        """``[(start, stop, features)]``: the sound finished parts of this entry in the folder, by start."""
        pattern = re.compile(re.escape(self.key) + r"\.rows-(\d+)-(\d+)\.npy")
        found = []
        for path in sorted(self.folder.glob(f"{self.key}.rows-*.npy")):
            match = pattern.fullmatch(path.name)
            if match and int(match[1]) < int(match[2]) <= self.shape[0]:
                features = self.part(int(match[1]), int(match[2])).load_final()
                if features is not None:
                    found.append((int(match[1]), int(match[2]), features))
        return sorted(found, key=lambda part: part[:2])

    def segments(self, row, parts):
        """``[(start, stop, part or None)]`` from ``row`` to the last row: the rows to copy from a finished
        part of :meth:`finished_parts` (the one reaching furthest where several overlap) and, between
        them, the rows to extract."""
        segments = []
        while row < self.shape[0]:
            covering = [part for part in parts if part[0] <= row < part[1]]
            if covering:
                part = max(covering, key=lambda part: part[1])
                segments.append((row, part[1], part))
            else:
                stop = min([part[0] for part in parts if part[0] > row], default=self.shape[0])
                segments.append((row, stop, None))
            row = segments[-1][1]
        return segments

    def _read_done(self):
        if not (self.done_marker.is_file() and self.partial.is_file()):
            return 0
        text = self.done_marker.read_text().strip()
        if text.isdigit() and int(text) <= self.shape[0]:
            return int(text)
        self._set_aside(self.done_marker, f"its content {text[:20]!r} is not an image count")
        return 0

    def _set_aside(self, path, reason):
        damaged = path.with_name(path.name + ".damaged")
        warnings.warn(f"Feature cache file {path} is damaged ({reason}); moved to {damaged.name} and rebuilt.",
                      stacklevel=3)
        os.replace(path, damaged)
