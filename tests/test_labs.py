"""Every lab notebook runs at small size (``KERAS_TL_LAB_SMALL=1``) and produces its figures and numbers.

The notebooks are executed with nbclient in a kernel of this interpreter, each in a temporary
folder (its run folder is ``<tmp>/runs/labN``). Slow: about a minute per lab on two cores; run
them alone with ``make labs``. The committed notebooks must match their scripts (``make notebooks``).
"""
import json
import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("jupytext")
pytest.importorskip("ipykernel")

LABS = pathlib.Path(__file__).resolve().parents[1] / "labs"
sys.path.insert(0, str(LABS))
import build_notebooks  # noqa: E402

from keras_tl.data import photos  # noqa: E402

EXPECTED = {
    "lab1_feature_extraction": {
        "figures": ["kernels.png", "samples.png", "confusion_matrix.png", "similar_vs_dissimilar.png",
                    "per_layer.png", "few_shot.png", "image_map.png", "dendrogram.png"],
        "check": lambda r: r["fne_accuracy"] > 0.4 and r["baseline_accuracy"] > 0.4
                           and r["feature_width"] > r["last_layer_width"]
                           and set(r["gain"]) == set(r["best_layer"]) == {"photos (similar)",
                                                                           "silhouettes (dissimilar)"}
                           and all(abs(gain["mean"]) <= 1 and gain["std"] >= 0 for gain in r["gain"].values())
                           and r["gain"]["silhouettes (dissimilar)"]["mean"] > r["gain"]["photos (similar)"]["mean"]
                           and all(0 < best["depth"] <= 1 for best in r["best_layer"].values())
                           and set(r["cluster_purity"]) == {"last layer", "FNE"}
                           and all(0.2 < purity <= 1 for purity in r["cluster_purity"].values()),
        "needs": photos.STAMPS_DIR,  # the photographs: apt-get install tuxpaint-stamps-default
    },
    "lab2_fine_tuning": {
        "figures": ["augmentation.png", "learning_curves.png"],
        "check": lambda r: r["fine_tuning"] > r["scratch"] and r["feature_extraction"] > r["scratch"]
                           and r["augmentation_preview_classes"] >= 3,
        "needs": photos.STAMPS_DIR,
    },
    "lab3_word_embeddings": {
        "figures": ["distances.png", "map_pca.png"],
        "check": lambda r: r["analogy_accuracy"] > 0.2 and r["frozen_glove"] >= r["scratch_embedding"]
                           and r["projector_words"] >= 1000,
    },
    "lab4_domain_adaptation": {
        "figures": ["domains.png", "pca.png", "accuracy.png", "dann_curves.png", "colour_domain.png", "methods.png"],
        "check": lambda r: r["in_domain"] > r["source_only"] + 0.2 and r["coral"] > r["source_only"]
                           and r["covariance_gap_after"] < r["covariance_gap_before"]
                           and r["dann_target_mean"] > 0.1 and r["dann_target_std"] >= 0
                           and set(r["coloured"]) == set(r["inverted"]) >= {"source only", "DANN"},
    },
    "lab5_looking_inside": {
        "figures": ["filters.png", "feature_maps.png", "top_images.png", "maximized.png", "feature_in_context.png",
                    "top_losses.png", "per_class_accuracy.png"],
        "check": lambda r: r["first_layer_filters"] == 32 and r["top_images_sorted"] and r["ascent_improved"] >= 0.5
                           and len(r["dead_channels"]) == len(r["top_image_classes"]) == 4
                           and all(0 <= share < 1 for share in r["dead_channels"].values())
                           and all(1 <= classes <= 6 for classes in r["top_image_classes"].values())
                           and abs(sum(r["feature_codes"].values()) - 1) < 1e-6
                           and r["fine_tuned_accuracy"] > r["raw_pixel_accuracy"] and r["fine_tuned_accuracy"] > 2 / 9
                           and r["check_errors"]["correct"] == 0
                           and min(r["check_errors"][name] for name in ("raw_pixels", "scaled_twice",
                                                                         "batchnorm_training")) >= 1,
        "needs": photos.STAMPS_DIR,
    },
}


def test_notebooks_match_their_scripts():
    stale = [str(path) for script in sorted(LABS.glob("lab[0-9]_*.py"))
             for path, text in build_notebooks.build(script).items()
             if not path.is_file() or path.read_text() != text]
    assert not stale, f"run `make notebooks`: out of date: {stale}"


def test_student_notebooks_hide_the_solutions():
    for script in sorted(LABS.glob("lab[0-9]_*.py")):
        teacher = nbformat.reads(build_notebooks.build(script)[script.with_suffix(".ipynb")], as_version=4)
        solutions = [cell for cell in teacher.cells if "solution" in cell.metadata.get("tags", [])]
        assert 4 <= len(solutions) <= 7, f"{script.name}: {len(solutions)} exercise solutions"
        student = build_notebooks.student_version(teacher)
        exercises = [cell for cell in student.cells if "exercise" in cell.metadata.get("tags", [])]
        assert [cell.source for cell in exercises] == [build_notebooks.STUDENT_STUB] * len(solutions)


@pytest.mark.parametrize("lab", sorted(EXPECTED))
def test_teacher_notebooks_show_their_full_size_run_and_student_notebooks_nothing(lab):
    teacher = nbformat.read(LABS / f"{lab}.ipynb", as_version=4)
    code = [cell for cell in teacher.cells if cell.cell_type == "code"]
    assert "full size" in teacher.metadata[build_notebooks.RUN_INFO]["run"], "run `make executed-notebooks`"
    assert all(cell.execution_count for cell in code), "a cell was not run"
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    figures = sum("image/png" in output.get("data", {}) for output in outputs)
    assert figures >= len(EXPECTED[lab]["figures"]), f"{figures} inline figures"
    assert not [output for output in outputs if build_notebooks.WIDGET in output.get("data", {})]
    student = nbformat.read(LABS / "student" / f"{lab}.ipynb", as_version=4)
    assert [cell.outputs for cell in student.cells if cell.cell_type == "code"] == [[]] * len(code)
    assert build_notebooks.RUN_INFO not in student.metadata
    assert not any("solution" in cell.metadata.get("tags", []) for cell in student.cells)


@pytest.mark.parametrize("lab", sorted(EXPECTED))
def test_lab_runs_small(lab, tmp_path, decode_cache):
    needs = EXPECTED[lab].get("needs")
    if needs is not None and not needs.exists():
        pytest.skip(f"{lab} reads {needs}, not installed here")
    notebook = nbformat.read(LABS / f"{lab}.ipynb", as_version=4)
    build_notebooks.execute(notebook, tmp_path, small=True, timeout=600)  # raises on any error, with its cell
    run_dir = tmp_path / "runs" / lab.split("_")[0]
    figures = sorted(path.name for path in (run_dir / "figures").glob("*.png"))
    assert set(EXPECTED[lab]["figures"]) <= set(figures), figures
    shown = sum(1 for cell in notebook.cells if cell.cell_type == "code"
                for output in cell.get("outputs", []) if "image/png" in output.get("data", {}))
    assert shown >= len(EXPECTED[lab]["figures"]), f"only {shown} figures shown inline"
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.get("outputs", []))
    assert "IProgress not found" not in printed  # the lab extra's ipywidgets draw the progress bars
    results = json.loads((run_dir / "results.json").read_text())
    assert EXPECTED[lab]["check"](results), results
    written = sorted(path.name for path in tmp_path.iterdir() if path != decode_cache)  # $KERAS_TL_CACHE: conftest's
    assert written == ["runs"], "the lab wrote outside its run folder"


def test_jupyterlab_serves_the_labs(tmp_path):
    """``make lab``: after the set-up, JupyterLab (the ``lab`` extra) starts on 127.0.0.1 and lists the labs."""
    import socket
    import subprocess
    import time
    import urllib.request

    pytest.importorskip("jupyterlab", reason="the lab extra: pip install -e '.[lab]'")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "keras-tl-test"
    home = {f"JUPYTER_{name}_DIR": str(tmp_path / name.lower()) for name in ("CONFIG", "DATA", "RUNTIME")}
    server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={LABS.parent}",
                               "--allow-root"],  # CI runs as root
                              env={**os.environ, **home}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        listing, deadline = None, time.monotonic() + 120
        while listing is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/labs?token={token}",
                                            timeout=5) as answer:
                    listing = json.load(answer)
            except OSError:
                time.sleep(1)
        assert listing is not None, "JupyterLab did not answer on 127.0.0.1 within 120 s"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    notebooks = {entry["name"] for entry in listing["content"] if entry["type"] == "notebook"}
    assert {f"{name}.ipynb" for name in EXPECTED} <= notebooks


def test_the_notebook_job_runs_what_a_student_edited_and_keeps_its_figures(tmp_path):
    """``labs/slurm/notebook.sbatch NOTEBOOK``, here without Slurm (the script is bash): the executed copy,
    with its figure inline, and an HTML page of it, in runs/notebook-<job id>/ of the submit folder."""
    import subprocess

    venv = LABS.parent / ".venv"
    if not (venv / "bin" / "activate").is_file() or not (venv / "bin" / "jupyter").is_file():
        pytest.skip("needs the project's .venv with the lab extra (make lab)")
    (tmp_path / ".venv").symlink_to(venv)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nimport matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nprint(os.environ['KERAS_TL_LAB_RUN_DIR'])")])
    notebook.metadata["kernelspec"] = build_notebooks.KERNELSPEC
    nbformat.write(notebook, tmp_path / "mine.ipynb")
    finished = subprocess.run(["bash", str(LABS / "slurm" / "notebook.sbatch"), "mine.ipynb"], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "SLURM_SUBMIT_DIR": str(tmp_path),
                                                           "SLURM_JOB_ID": "42"})
    assert finished.returncode == 0, finished.stderr[-2000:]
    out = tmp_path / "runs" / "notebook-42"
    executed = nbformat.read(out / "mine.ipynb", as_version=4)
    outputs = executed.cells[0].outputs
    assert any("image/png" in output.get("data", {}) for output in outputs)
    assert any(str(out / "run") in output.get("text", "") for output in outputs)
    assert b"<html" in (out / "mine.html").read_bytes()[:2000].lower()
    assert not (tmp_path / "mine.ipynb.bak").exists() and nbformat.read(tmp_path / "mine.ipynb", as_version=4
                                                                         ).cells[0].outputs == []  # untouched

