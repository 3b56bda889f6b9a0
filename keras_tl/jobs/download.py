"""The download job, ``python -m keras_tl.download NAME DIR`` (``--list``: the names).

Downloads a course dataset's published files into DIR, checks their SHA-256 (or, where none is
published, their content), and unpacks them into the layout that ``--dataset NAME:DIR`` reads (see
:mod:`keras_tl.data.downloads`); an archive that would write outside DIR, holds a FIFO or a device, or
unpacks to more than ``--max-unpacked-size`` is refused. An interrupted download resumes when the
same command runs again; a finished DIR is left as it is.
"""
import argparse

from keras_tl import messages, runs
from keras_tl.data import archives, downloads
from keras_tl.jobs import cli

EXAMPLES = """examples:
  python -m keras_tl.download --list
  python -m keras_tl.download flowers102 ~/data/flowers102
  python -m keras_tl.fne --dataset flowers102:~/data/flowers102
"""


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.download", description="Download a course dataset's published files, checked, "
        "into the layout --dataset NAME:DIR reads.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="the dataset (see --list)")
    parser.add_argument("dir", nargs="?", help="the folder to make (new or empty)")
    parser.add_argument("--list", action="store_true", help="list the datasets and their files, then stop")
    parser.add_argument("--max-unpacked-size", type=float, default=None, metavar="GIB",
                        help=f"the GiB one archive may unpack to (default: {archives.MAX_UNPACKED_SIZE >> 30}, and at "
                             f"most {archives.MAX_RATIO} times the archive's size; a value given replaces both)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    cli.add_verbose(parser)
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    if not args.list and not (args.name and args.dir):
        parser.error("give NAME and DIR (or --list to see the names).")
    cli.check_options(parser, args, max_unpacked_size=cli.POSITIVE)
    return args


def run(args):
    if args.list:
        print(list_datasets())
        return
    dataset = downloads.published(args.name)
    if downloads.is_downloaded(args.dir):
        print(f"{args.dir} already holds {args.name}: nothing to do.")
        return
    size = sum(remote.size or 0 for remote in dataset.files)
    if not args.quiet:
        print(f"Downloading {dataset.title}: {len(dataset.files)} file(s), "
              f"{runs.readable_size(size) if size else 'size not published'}, into {args.dir}", flush=True)
    cap = None if args.max_unpacked_size is None else int(args.max_unpacked_size * (1 << 30))
    try:
        record = downloads.download(args.name, args.dir, verbose=not args.quiet, max_unpacked_size=cap)
    except ConnectionError as error:  # offline or interrupted: one error line; the same command resumes
        raise ValueError(str(error)) from None
    except OSError as error:
        if error.errno not in runs.DISK_FULL:
            raise
        raise ValueError(f"{error.strerror} (writing {error.filename or args.dir}). Free some space there, or give "
                         f"a DIR on another disk, then run the same command again: it resumes.") from None
    for entry in record["files"]:
        if not entry["checked"]:
            print(f"no published checksum for {entry['url']}: its content was checked instead; its SHA-256 is "
                  f"{entry['sha256']} (kept in {args.dir}/{downloads.RECORD})")
    print(f"Done: python -m keras_tl.fne --dataset {args.name}:{args.dir}")


def list_datasets():
    """The table of ``--list``: each name, its title, files, size and whether checksums are published."""
    rows = []
    for name, dataset in downloads.DATASETS.items():
        size = sum(remote.size or 0 for remote in dataset.files)
        checked = ("needs an account: " + dataset.page if not dataset.files else
                   "SHA-256" if all(remote.sha256 for remote in dataset.files) else "none published")
        rows.append((name, dataset.title, ", ".join(remote.name for remote in dataset.files) or "-",
                     runs.readable_size(size) if size else "-", checked))
    return messages.format_table(rows, ["name", "dataset", "files", "size", "checksums"])


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, resumable=True, make_parser=make_parser)
