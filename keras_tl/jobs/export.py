"""The export job, ``python -m keras_tl.export RUN_DIR --format savedmodel|tflite|onnx|openvino``: a run for serving.

Writes the run's raw-image model (RGB 0..255 in, the preprocessing inside) in one format, with
``labels.txt`` and ``export.json``, into ``--output-dir`` (default ``RUN_DIR/export/<format>``), and
checks it against the Keras model on the run's test images: top-1 agreement, accuracy, batch-1
latency (:mod:`keras_tl.analysis.formats`). ``--quantize float16|int8`` makes a smaller TensorFlow
Lite model (int8: calibrated on up to 200 of the run's training images).
"""
import argparse

from keras_tl.jobs import cli
from keras_tl.messages import format_table

FORMATS = cli.library_constant("keras_tl.analysis.formats", "FORMATS")
QUANTIZATIONS = cli.library_constant("keras_tl.analysis.formats", "QUANTIZATIONS")

EXAMPLES = """examples:
  python -m keras_tl.export runs/fine_tune-20260101-120000 --format savedmodel   # TF Serving, JPEG bytes in
  python -m keras_tl.export runs/fine_tune-20260101-120000 --format tflite --quantize int8   # a phone, a Pi
  python -m keras_tl.export runs/fne-20260101-120000 --format onnx --output-dir models/flowers-onnx
  python -m keras_tl.export runs/fne-20260101-120000 --format openvino
"""


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.export", description="Export a finished fine_tune or fne run for serving or a "
        "device, checked against the Keras model on the run's test images.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder of a finished fine_tune or fne run")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="savedmodel (TensorFlow, TF Serving: encoded images in), tflite (LiteRT), onnx "
                             "(ONNX Runtime; pip install onnxruntime tf2onnx onnx) or openvino")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None,
                        help="tflite only: float16 (half the size) or int8 (a quarter; calibrated on the run's "
                             "training images); default float32")
    parser.add_argument("--dataset", default=None,
                        help="check the export on this dataset's test images (a name or folder) instead of the "
                             "run's own")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="the export folder, replaced if it holds an earlier export "
                             "(default: RUN_DIR/export/<format>[-<quantize>])")
    parser.add_argument("--quiet", action="store_true", help="no plan")
    cli.add_verbose(parser)
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.quantize and args.format != "tflite":
        parser.error(f"--quantize {args.quantize} is for --format tflite; the {args.format} export is float32.")
    return args


def run(args):
    """Export, check and describe the run; print the summary; return what ``export.json`` holds."""
    from keras_tl.analysis import formats

    report = formats.export_run(args.run_dir, args.format, args.quantize, args.output_dir, args.dataset,
                                verbose=not args.quiet)
    output_dir = args.output_dir or formats.default_output_dir(args.run_dir, args.format, args.quantize)
    rows = [[f"{report['format']} ({report['quantization']})", report["size"],
             f"{report['top1_agreement']:.4f}", f"{report['accuracy']:.4f}", f"{report['keras_accuracy']:.4f}",
             f"{report['latency_ms']:.2f}", f"{report['keras_latency_ms']:.2f}"]]
    print(format_table(rows, ["export", "size", "top-1 agreement", "accuracy", "Keras accuracy", "batch-1 ms",
                              "Keras batch-1 ms"]))
    verdict = "meets" if report["meets_target"] else f"misses by {report['misses_by']}"
    print(f"Target: {report['target']}: {verdict} (on {report['test_images']} test images; run: {report['runtime']})")
    print(f"Export folder: {output_dir} ({report['file']}, labels.txt, export.json)")
    return report


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, resumable=False, make_parser=make_parser)
