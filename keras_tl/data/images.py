"""Image files: which files are images, the one decoder, and the decode check that runs it on every file first.

Decode before you trust: every image file is decoded in full by :func:`decode_image`, the very
function the pipeline uses, before the run starts. Files that fail are skipped with one warning
(:func:`warn_unreadable`) and listed in ``ImageDataset.skipped``; the verdicts are cached by
(path, size, mtime) in :func:`decode_cache_file`, so a rerun decodes nothing. Hidden files and
folders (a name starting with ``.``, such as ``.ipynb_checkpoints/``) are never data.
"""
import concurrent.futures
import json
import os
import pathlib
import warnings

import numpy as np

from keras_tl import messages, runs

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
# How a non-square image becomes square (resize=, --resize): stretched (every pixel kept, shapes distorted),
# its central square cropped (shapes kept, the edges lost), or padded to a square (all kept, smaller).
RESIZE_MODES = ("squash", "crop", "pad")
# The padding: white, the background that to_rgb composites transparent images on, and that of the
# clip art and Tux Paint stamps; black (Keras's default fill_value) would be a frame those images never have.
PAD_VALUE = 255


def to_rgb(image):
    """A Pillow image as RGB: transparency composited on white, grey, palette and CMYK converted."""
    from PIL import Image

    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def rgb_array(image, dtype=None):
    """An in-memory image as an (H, W, 3) array (of ``dtype``, else its own): grey ``(H, W)`` or ``(H, W, 1)`` repeated into
    three channels, RGB passed through; None for any other shape (the caller names what it expected)."""
    array = np.asarray(image, dtype=dtype)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    return array if array.ndim == 3 and array.shape[-1] == 3 else None


def to_8bit(image):
    """Scale a 16-bit or float grey image to 8 bits (``L``) instead of clipping it; other modes pass through.

    Integer images (``I;16``, ``I``: 16-bit PNG and TIFF files) are divided by 257, so 65535 becomes 255.
    Float images (``F``) are taken to hold 0..1, the usual convention, and multiplied by 255; one
    whose values leave 0..1 is stretched from its own minimum (0) to its maximum (255) instead.
    NaN or infinite pixels make the file unreadable.
    """
    from PIL import Image

    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64) / 257.0
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("float image with NaN or infinite pixels")
        low, high = values.min(), values.max()
        if low < 0.0 or high > 1.0:
            values = (values - low) / max(high - low, np.finfo(float).tiny)
        values = values * 255.0
    else:
        return image
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def decode_image(path):
    """Decode one image file in full as an 8-bit RGB Pillow image, upright as its EXIF says.

    The one decoder: the pipeline reads every image through it, and the decode check runs it on
    every file first, so a file that passes the check does not fail in the pipeline (unless it
    changes in between).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.load()
        return to_rgb(to_8bit(ImageOps.exif_transpose(image)))


def check_resize(resize):
    """A ``ValueError`` naming ``resize=`` unless it is one of :data:`RESIZE_MODES`."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize={resize!r} is not one of {', '.join(RESIZE_MODES)}: squash stretches the image to a "
                         f"square, crop keeps its central square, pad adds white borders to make it square.")


def square_box(width, height, resize):
    """``(left, top, side)``: where the square that ``resize`` makes of a ``width`` x ``height`` image lies in
    the image's coordinates. ``"crop"``: the central square (``side`` the shorter side); ``"pad"``: the image
    centred on a square of its longer side (``left`` and ``top`` then not above 0); ``"squash"``: ``None``.
    As ``keras.layers.Resizing``'s ``crop_to_aspect_ratio`` and ``pad_to_aspect_ratio`` for a square target."""
    check_resize(resize)
    if resize == "squash":
        return None
    if resize == "crop":
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side
    side = max(width, height)
    return -((side - width) // 2), -((side - height) // 2), side


def resize_image(image, size, resize="squash"):
    """A Pillow RGB ``image`` at ``size`` x ``size`` px (bilinear), made square first as ``resize`` says
    (:data:`RESIZE_MODES`; ``"pad"`` fills with :data:`PAD_VALUE`)."""
    from PIL import Image

    box = square_box(*image.size, resize)
    if box is not None:
        left, top, side = box
        if resize == "crop":
            image = image.crop((left, top, left + side, top + side))
        else:
            square = Image.new("RGB", (side, side), (PAD_VALUE,) * 3)
            square.paste(image, (-left, -top))
            image = square
    return image.resize((size, size), Image.BILINEAR)


def load_image(path, size, resize="squash"):
    """Read one image file as a ``(size, size, 3)`` uint8 RGB array (see :func:`decode_image` and
    :func:`resize_image`)."""
    check_resize(resize)  # before decoding
    return np.asarray(resize_image(decode_image(path), size, resize), dtype=np.uint8)


def decode_cache_file(cache_dir=None):
    """Where decode-check verdicts are kept: ``cache_dir``, else ``$KERAS_TL_CACHE``, else ``~/.cache/keras_tl``."""
    folder = cache_dir or os.environ.get("KERAS_TL_CACHE") or (
        pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "keras_tl")
    return pathlib.Path(folder) / "decode_check.json"


def _read_decode_cache(cache_file):
    """The cached ``{path: [size, mtime_ns, reason or None]}``; empty if missing, unreadable or from another Pillow."""
    import PIL

    try:
        cache = json.loads(pathlib.Path(cache_file).read_text())
    except (OSError, ValueError):
        return {}
    return cache.get("files", {}) if cache.get("pillow") == PIL.__version__ else {}


def _check_image(path):
    """None when ``path`` is a sound image (checksums and a full decode), else the reason it is not."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()  # checksums that decoding ignores, such as a PNG chunk's CRC
        decode_image(path)
    except Exception as error:  # Pillow raises many types for bad files: all mean "skip it"
        return f"{type(error).__name__}: {str(error)[:80]}"
    return None


def find_unreadable_images(paths, cache_dir=None, verbose=False):
    """Return ``{path: reason}`` for the files that are not readable images.

    Every file is decoded in full with :func:`decode_image` (after Pillow's ``verify()``), in a
    thread per CPU. That catches empty files, non-images, truncated and damaged files, and images
    too large to decode safely (Pillow's decompression-bomb limit). JPEG has no checksum, so damage
    that still decodes (a smudged block) passes; it cannot break the pipeline either. Verdicts are
    cached by (path, size, mtime) in :func:`decode_cache_file`; files seen before are not decoded again.
    """
    cache_file = decode_cache_file(cache_dir)
    cached = _read_decode_cache(cache_file)
    bad, fresh, todo = {}, {}, []
    for path in map(str, paths):
        try:
            stat = os.stat(path)
        except OSError as error:
            bad[path] = f"{type(error).__name__}: {error.strerror}"
            continue
        key, stamp = os.path.abspath(path), [stat.st_size, stat.st_mtime_ns]
        entry = cached.get(key)
        if entry is None or entry[:2] != stamp:
            todo.append((path, key, stamp))
        elif entry[2]:
            bad[path] = entry[2]
    if not todo:
        return bad
    bar = messages.progress_bar(len(todo), "Checking images", verbose=verbose)
    pool = concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1)  # Pillow decodes without the GIL
    try:
        for (path, key, stamp), reason in zip(todo, pool.map(_check_image, [path for path, _, _ in todo])):
            fresh[key] = stamp + [reason]
            if reason:
                bad[path] = reason
            bar.update()
    finally:  # on Ctrl-C too: drop the queued files, keep the verdicts so far
        pool.shutdown(cancel_futures=True)
        bar.close()
        _write_decode_cache(cache_file, fresh)
    return bad


def _write_decode_cache(cache_file, fresh):
    """Add ``fresh`` verdicts to the cache file (atomically); a cache that cannot be written only costs time."""
    import PIL

    try:
        with runs.atomic_path(cache_file) as tmp:
            files = {**_read_decode_cache(cache_file), **fresh}
            tmp.write_text(json.dumps({"pillow": PIL.__version__, "files": files}))
    except OSError as error:
        warnings.warn(f"Could not write the decode-check cache {cache_file} ({error}); set KERAS_TL_CACHE "
                      f"to a writable folder to skip the check on reruns.", stacklevel=3)


def sample_photos(size):
    """scikit-learn's two sample photos (a Chinese temple, a daisy) as ``(2, size, size, 3)`` uint8."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    return np.stack([np.asarray(Image.fromarray(photo).resize((size, size), Image.BILINEAR)) for photo in photos])


def warn_unreadable(bad, stacklevel=2):
    """One warning naming every unreadable file (``{path: reason}``) and why: the jobs' single message."""
    listing = "\n  ".join(f"{path} ({reason})" for path, reason in sorted(bad.items()))
    warnings.warn(f"Skipping {len(bad)} unreadable image file(s):\n  {listing}", stacklevel=stacklevel + 1)


def image_files(folder):
    """The image files under ``folder`` (recursively, sorted); hidden files and folders are left out.

    A link that leads nowhere (broken, or a loop) is left out with a warning that names it.
    """
    folder = pathlib.Path(folder)
    candidates = [path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts)]
    dangling = sorted(str(path) for path in candidates if path.is_symlink() and not path.exists())
    if dangling:
        warnings.warn(f"Leaving out {len(dangling)} link(s) under {folder} that lead to no file (broken or a loop): "
                      + ", ".join(dangling[:3]) + (", ..." if len(dangling) > 3 else ""), stacklevel=3)
    return sorted(str(path) for path in candidates if path.is_file())
