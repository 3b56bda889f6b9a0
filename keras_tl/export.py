"""``python -m keras_tl.export RUN_DIR --format savedmodel|tflite|onnx|openvino``: a run for serving or a device.

The job is :mod:`keras_tl.jobs.export`; in a notebook use :func:`keras_tl.analysis.formats.export_run`.
This module only starts the job. (In keras_tl 0.1 this path was the module now at
:mod:`keras_tl.analysis.export`.)
"""
if __name__ == "__main__":
    from keras_tl.jobs import cli

    raise SystemExit(cli.main("export"))
