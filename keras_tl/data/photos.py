"""``tuxpaint_photos``: real photographs offline, from Debian's ``tuxpaint-stamps-default`` (the stamps
of Tux Paint, a paint program for children): objects cut out on transparent backgrounds, in the
package's category folders. Its page is ``datasets/tuxpaint_photos.md``.

The package mixes photographs with drawings, and its folders say so only in part: drawings sit in
``cartoon/`` sub-folders and SVG files (which are not read), but a few drawings sit among the
photographs. Those were found by looking at every image of the categories below, and are listed
in :data:`NOT_PHOTOS` with the reason. A class is one of the package's categories, read recursively;
categories with fewer than :data:`MIN_PHOTOS_PER_CLASS` photographs are left out.
"""
import pathlib

from keras_tl.data.folders import file_dataset
from keras_tl.data.images import image_files

STAMPS_DIR = pathlib.Path("/usr/share/tuxpaint/stamps")
MIN_PHOTOS_PER_CLASS = 10
PHOTO_CATEGORIES = {  # class: its folder under STAMPS_DIR, sub-folders included
    "birds": "animals/birds",
    "fish": "animals/fish",
    "flowers": "plants/flowers",
    "fruit": "food/fruit",
    "mammals": "animals/mammals",
    "musical_instruments": "hobbies/music",
    "tools": "household/tools",
    "vegetables": "food/vegetables",
    "vehicles": "vehicles",
}
NOT_PHOTOS_FOLDERS = {  # a sub-folder of that name holds no photograph of its category
    "cartoon": "drawings",
    "toys": "a teddy bear among the bears",
    "plastic": "a plastic flower among the flowers",
}
MIRROR_SUFFIX = "_mirror"  # Tux Paint's flipped copy of the stamp beside it: a copy in train and one in test leak
NOT_PHOTOS = {  # path under STAMPS_DIR: why it is not a photograph
    "animals/fish/shrimp.png": "a washed-out image of 52 colours",
    "animals/mammals/aquatic/orca.png": "a painting",
    "animals/mammals/echidna.png": "a black silhouette",
    "animals/mammals/hedgehog.png": "a cartoon",
    "vehicles/7spoke256.png": "a drawn wheel",
    "vehicles/emergency/sedan_police.png": "drawn police emblems",
    "vehicles/ship/chineseJunk.png": "a drawing",
}


def is_photo(path):
    """Whether the image file ``path`` under :data:`STAMPS_DIR` is one of the photographs (see the module docstring)."""
    relative = pathlib.Path(path).relative_to(STAMPS_DIR)
    return (not NOT_PHOTOS_FOLDERS.keys() & set(relative.parent.parts)
            and not relative.stem.endswith(MIRROR_SUFFIX)
            and relative.as_posix() not in NOT_PHOTOS)


def photo_files():
    """``{class: [photograph files]}`` of every category in :data:`PHOTO_CATEGORIES`, before the decode check."""
    if not STAMPS_DIR.is_dir():
        raise FileNotFoundError(f"{STAMPS_DIR} not found: the tuxpaint_photos dataset needs Debian's Tux Paint "
                                f"stamps: apt-get install tuxpaint-stamps-default.")
    return {name: [path for path in image_files(STAMPS_DIR / folder) if is_photo(path)]
            for name, folder in PHOTO_CATEGORIES.items()}


def read(spec, options):
    """The photographs of Tux Paint's stamps (``spec`` "tuxpaint_photos"): a class per category with at least
    :data:`MIN_PHOTOS_PER_CLASS` of them, split by ``options`` (seeded, stratified). Transparent
    backgrounds become white when an image is decoded (:func:`keras_tl.data.images.to_rgb`)."""
    return file_dataset("tuxpaint_photos", STAMPS_DIR, {"all": photo_files()}, options,
                        min_images=MIN_PHOTOS_PER_CLASS)
