"""Write each lab's notebooks from its jupytext percent script: ``python labs/build_notebooks.py``.

- ``labs/labN_*.ipynb``: the teacher's version, every cell as written, with the outputs and figures
  of its last full-size run (``--execute``);
- ``labs/student/labN_*.ipynb``: the student's version, where each cell tagged ``solution`` is
  replaced by an empty exercise cell, and no outputs.

A plain build keeps a teacher notebook's outputs while its code cells are those of the script
(a change of prose keeps them) and drops them when the code changed, saying so. ``--execute``
runs the teacher notebooks at full size, in a temporary folder, and keeps what they printed and
drew (``make executed-notebooks``: about 25 minutes on two cores). Cell ids are numbered, so a
build writes identical files every time; ``--check`` writes nothing and exits 1 when a notebook
is out of date.
"""
import argparse
import os
import pathlib
import sys
import tempfile
import time

import jupytext
import nbformat

LABS = pathlib.Path(__file__).resolve().parent
STUDENT_STUB = "# Your solution here.\n"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
RUN_INFO = "keras_tl"  # notebook metadata of an executed teacher notebook: how long its run took, where
WIDGET = "application/vnd.jupyter.widget-view+json"  # a live progress bar: nothing to show once saved


def notebook_text(notebook):
    """The notebook as nbformat writes it, with a final newline, ready to compare or save."""
    return nbformat.writes(notebook) + "\n"


def clean(notebook):
    """Drop outputs and jupytext's own metadata; number the cells so the file is the same every run."""
    notebook.metadata = {"kernelspec": dict(KERNELSPEC),
                         "language_info": {"name": "python"}}
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:03d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {key: value for key, value in cell.metadata.items() if key == "tags"}
    return notebook


def code_sources(notebook):
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def with_outputs_of(teacher, executed):
    """``teacher`` with the outputs of ``executed`` when both have the same code cells, else unchanged.
    Returns whether the outputs were carried over."""
    if executed is None or code_sources(executed) != code_sources(teacher):
        return False
    runs = iter(cell for cell in executed.cells if cell.cell_type == "code")
    for cell in teacher.cells:
        if cell.cell_type == "code":
            run = next(runs)
            cell.outputs = [output for output in run.outputs if WIDGET not in output.get("data", {})]
            cell.execution_count = run.execution_count
    if RUN_INFO in executed.metadata:
        teacher.metadata[RUN_INFO] = dict(executed.metadata[RUN_INFO])
    return True


def student_version(notebook):
    """A copy without outputs whose ``solution`` cells hold only a stub for the student's code."""
    student = nbformat.from_dict(notebook)
    student.metadata.pop(RUN_INFO, None)
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "solution" in cell.metadata.get("tags", []):
            cell.source = STUDENT_STUB
            cell.metadata["tags"] = [tag for tag in cell.metadata["tags"] if tag != "solution"] + ["exercise"]
    return student


def execute(notebook, folder, small=False, timeout=None):
    """Run every cell of ``notebook`` (in place) in a kernel of this interpreter, in ``folder``: the
    lab's run folder is ``folder/runs/labN``. ``small`` sets ``KERAS_TL_LAB_SMALL=1``. Raises
    nbclient's ``CellExecutionError``, with the cell and its traceback, on the first error."""
    import nbclient

    env = {key: value for key, value in os.environ.items()
           if key not in ("MPLBACKEND", "KERAS_TL_LAB_RUN_DIR", "KERAS_TL_LAB_SMALL")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(LABS.parent), **({"KERAS_TL_LAB_SMALL": "1"} if small else {}))
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                     resources={"metadata": {"path": str(folder)}})
    client.execute(env=env)
    return notebook


def executed_teacher(script):
    """The teacher notebook of ``script``, run at full size in a temporary folder, with its run time."""
    teacher = clean(jupytext.read(script, fmt="py:percent"))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"{script.stem}-") as folder:
        execute(teacher, folder)
    minutes = (time.perf_counter() - start) / 60
    teacher.metadata[RUN_INFO] = {"run": f"full size, seed 0, {minutes:.1f} minutes on {os.cpu_count()} CPU cores "
                                         f"(load average {os.getloadavg()[1]:.1f} at the end)"}
    return teacher


def build(script, executed=None):
    """``{path: text}`` of the teacher's and the student's notebooks of one lab script. The teacher's
    carries the outputs of ``executed`` (by default the teacher notebook on disk) while its code is
    the script's."""
    teacher = clean(jupytext.read(script, fmt="py:percent"))
    path = script.with_suffix(".ipynb")
    if executed is None and path.is_file():
        executed = nbformat.read(path, as_version=4)
    with_outputs_of(teacher, executed)
    return {path: notebook_text(teacher),
            LABS / "student" / path.name: notebook_text(student_version(teacher))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 if a notebook is out of date; write nothing")
    action.add_argument("--execute", nargs="*", metavar="LAB",
                        help="run the teacher notebooks at full size and keep their outputs (all labs, or those "
                             "named, e.g. lab2)")
    args = parser.parse_args(argv)
    stale = []
    for script in sorted(LABS.glob("lab[0-9]_*.py")):
        executed = None
        if args.execute is not None and (not args.execute or script.stem.split("_")[0] in args.execute):
            print(f"running {script.name} at full size ...", flush=True)
            executed = executed_teacher(script)
            print(f"  {executed.metadata[RUN_INFO]['run']}", flush=True)
        notebooks = build(script, executed)
        for path, text in notebooks.items():
            if path.is_file() and path.read_text() == text:
                continue
            stale.append(path)
            if not args.check:
                path.parent.mkdir(exist_ok=True)
                tmp = path.with_suffix(".ipynb.tmp")
                tmp.write_text(text)
                tmp.replace(path)
                print("wrote", path.relative_to(LABS.parent))
        teacher = nbformat.reads(notebooks[script.with_suffix(".ipynb")], as_version=4)
        if RUN_INFO not in teacher.metadata:
            print(f"{script.with_suffix('.ipynb').name} has no outputs of a full-size run: "
                  f"run `make executed-notebooks` (or --execute {script.stem.split('_')[0]})")
    if args.check and stale:
        print("out of date:", ", ".join(str(path.relative_to(LABS.parent)) for path in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
