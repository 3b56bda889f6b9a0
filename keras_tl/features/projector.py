"""An embedding written for TensorBoard's Embedding Projector: vectors, metadata, a sprite of thumbnails.

The projector (``tensorboard --logdir FOLDER``, the Projector tab) shows the points in 3-D by PCA,
t-SNE or UMAP, coloured and labelled by their metadata, each drawn as its thumbnail when there is a
sprite. :func:`write_projector` writes the files its plugin reads, without needing TensorBoard:

- ``tensors.tsv``: one point per line, its values separated by tabs;
- ``metadata.tsv``: one row per point; with several columns, a header row first (the projector's rule);
- ``sprite.png``: the thumbnails in a square grid, row by row, in the points' order;
- ``projector_config.pbtxt``: the ``ProjectorConfig`` (text format) naming them, paths relative to it.

The folder is written whole beside its place and renamed there, so it is never half-written.
"""
import math
import os
import pathlib
import shutil
import uuid

import numpy as np

CONFIG_FILE = "projector_config.pbtxt"
TENSOR_FILE = "tensors.tsv"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"
MAX_SPRITE_SIZE = 8192  # pixels a side: the largest sprite the projector draws (a WebGL texture)


def write_projector(folder, vectors, metadata_rows, metadata_header=None, images=None, thumbnail_size=32,
                    name="embedding"):
    """Write ``vectors`` (one row per point) with their ``metadata_rows`` into ``folder``; return the folder.

    ``metadata_rows``: one value per point (one column), or one sequence of values per point with
    ``metadata_header`` naming the columns. ``images`` (optional): one per point, a file path or an
    array (grey or RGB, 0..255), drawn as ``thumbnail_size`` px squares in ``sprite.png``; when the
    grid would pass :data:`MAX_SPRITE_SIZE` px a side, the thumbnails are made smaller to fit.
    ``name`` is the tensor's name in the projector. An existing ``folder`` is replaced.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or not len(vectors):
        raise ValueError(f"vectors= must be a 2-D array, one row per point; got shape {vectors.shape}.")
    if not np.isfinite(vectors).all():
        raise ValueError(f"vectors= has NaN or infinity in {int((~np.isfinite(vectors)).any(axis=1).sum())} row(s); "
                         "the projector reads finite values only.")
    lines = metadata_lines(metadata_rows, metadata_header, len(vectors))
    if images is not None and len(images) != len(vectors):
        raise ValueError(f"images= needs one image per point: {len(vectors)} points, {len(images)} images.")
    if int(thumbnail_size) < 1:
        raise ValueError(f"thumbnail_size= must be at least 1 pixel; got {thumbnail_size}.")
    folder = pathlib.Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.part"
    staging.mkdir()
    try:
        with open(staging / TENSOR_FILE, "w", encoding="utf-8") as handle:  # each float32's shortest exact text
            handle.writelines("\t".join(map(str, row)) + "\n" for row in vectors)
        (staging / METADATA_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        sprite = None
        if images is not None:
            size = min(int(thumbnail_size), MAX_SPRITE_SIZE // math.ceil(math.sqrt(len(images))))
            if size < 1:
                raise ValueError(f"{len(images):,} thumbnails do not fit in a {MAX_SPRITE_SIZE} px sprite; "
                                 "give fewer images.")
            sprite_image(images, size).save(staging / SPRITE_FILE)
            sprite = (SPRITE_FILE, size)
        (staging / CONFIG_FILE).write_text(config_text(name, sprite), encoding="utf-8")
        _replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def metadata_lines(rows, header, count):
    """The lines of ``metadata.tsv`` (header first when given), tabs and line breaks in values made spaces."""
    rows = [[row] if header is None else list(row) for row in rows]
    if len(rows) != count:
        raise ValueError(f"metadata_rows= needs one row per point: {count} points, {len(rows)} rows.")
    if header is not None:
        header = list(header)
        wrong = next((index for index, row in enumerate(rows) if len(row) != len(header)), None)
        if len(header) < 2 or wrong is not None:
            raise ValueError(f"metadata_header= names {len(header)} column(s); " + (
                f"row {wrong} has {len(rows[wrong])}." if wrong is not None else
                "give several, or leave it out for one column (the projector reads one column without a header)."))
        rows = [header] + rows
    return ["\t".join(" ".join(str(value).split()) for value in row) for row in rows]


def sprite_image(images, size):
    """The ``size`` px thumbnails of ``images`` (:func:`keras_tl.features.neighbours.thumbnails`) in a square grid of
    ``ceil(sqrt(n))`` a side, row by row (a PIL image)."""
    from PIL import Image

    from keras_tl.features import neighbours

    side = math.ceil(math.sqrt(len(images)))
    grid = np.zeros((side * size, side * size, 3), dtype=np.uint8)
    for index, small in enumerate(neighbours.thumbnails(images, size)):
        row, column = divmod(index, side)
        grid[row * size:(row + 1) * size, column * size:(column + 1) * size] = small
    return Image.fromarray(grid)


def config_text(name, sprite=None):
    """``projector_config.pbtxt``: a ``ProjectorConfig`` in protobuf text format; ``sprite`` is ``(file, size)``."""
    lines = ["embeddings {", f"  tensor_name: {_quoted(name)}", f"  tensor_path: {_quoted(TENSOR_FILE)}",
             f"  metadata_path: {_quoted(METADATA_FILE)}"]
    if sprite is not None:
        lines += ["  sprite {", f"    image_path: {_quoted(sprite[0])}", f"    single_image_dim: {sprite[1]}",
                  f"    single_image_dim: {sprite[1]}", "  }"]
    return "\n".join(lines + ["}"]) + "\n"


def _quoted(text):
    """``text`` as a protobuf text-format string: UTF-8 bytes, printable ASCII as is, the rest octal escapes."""
    return '"' + "".join(chr(byte) if 32 <= byte < 127 and chr(byte) not in '"\\' else f"\\{byte:03o}"
                         for byte in str(text).encode("utf-8")) + '"'


def _replace_folder(staging, folder):
    """Rename ``staging`` onto ``folder``; an existing ``folder`` is moved aside first and removed after."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    old = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.old"
    os.replace(folder, old)
    try:
        os.replace(staging, folder)
    except OSError:
        os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
