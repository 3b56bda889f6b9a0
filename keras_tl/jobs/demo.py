"""The demo job, ``python -m keras_tl.demo RUN_DIR``: a web page on 127.0.0.1 that classifies uploaded images.

Loads a finished ``fine_tune`` or ``fne`` run and serves the page of
:func:`keras_tl.analysis.demo_app.build_demo` (Gradio, ``pip install -e '.[demo]'``) until Ctrl-C: one
uploads an image and sees its top classes with their scores, and for a fine-tuned run the Grad-CAM heat
map over the image. Only this machine can open it (127.0.0.1).
"""
import argparse
import socket
import time

from keras_tl.jobs import cli

HOST = "127.0.0.1"

EXAMPLES = """examples:
  python -m keras_tl.demo runs/fine_tune-20260101-120000              # then open http://127.0.0.1:7860
  python -m keras_tl.demo runs/fne-20260101-120000 --port 8000 --top-k 3
  ssh -L 7860:127.0.0.1:7860 cluster    # on your laptop, to open a page served on a remote machine
"""


def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_tl.demo", description="Serve a web page on 127.0.0.1 where one uploads an image and "
        "sees the top classes of a finished fine_tune or fne run (and Grad-CAM for a fine_tune run).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder of a finished fine_tune or fne run")
    parser.add_argument("--port", type=int, default=7860, help="the port on 127.0.0.1 (default 7860)")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per image (default 5)")
    cli.add_verbose(parser)
    return parser


def parse_args(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    cli.check_options(parser, args, port=cli.within(1, 65535), top_k=cli.AT_LEAST_ONE)
    return args


def check_port_free(port):
    """A ``ValueError`` when another program listens on ``port`` of 127.0.0.1 already (a port that a demo stopped
    a moment ago left in TIME_WAIT is free: the server reuses it, as this probe does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise ValueError(f"Port {port} on {HOST} is busy ({error.strerror}): another program, or another demo, "
                             f"uses it. Stop it or give another --port.") from None


def run(args):
    """Check Gradio and the port, load the run, serve its page until Ctrl-C; return the URL it served."""
    from keras_tl.analysis import demo_app, trained
    from keras_tl.jobs.predict import describe_run

    demo_app.require_gradio()
    check_port_free(args.port)
    model = trained.load_run(args.run_dir)
    page = demo_app.build_demo(model, top_k=args.top_k)
    try:
        page.launch(server_name=HOST, server_port=args.port, share=False, prevent_thread_lock=True, quiet=True)
    except OSError as error:  # taken in the moment since the check
        raise ValueError(f"Cannot serve on {HOST}:{args.port} ({error}). Give another --port.") from None
    url = f"http://{HOST}:{args.port}"
    shown = f"top {min(args.top_k, len(model.classes))} classes" + (" and Grad-CAM" * (model.kind == "fine_tune"))
    print(f"Run: {describe_run(model)}\nServing its {shown} of uploaded images at {url} (this machine only); "
          f"Ctrl-C stops it.", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopped.")
    finally:
        page.close()
    return url


def main(argv=None):
    return cli.run_cli(parse_args, run, argv, make_parser=make_parser)
