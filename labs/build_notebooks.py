"""Write each lab's notebooks from its jupytext percent script: ``python labs/build_notebooks.py``.

- ``labs/labN_*.ipynb``: the teacher's version, every cell as written;
- ``labs/student/labN_*.ipynb``: the student's version, where each cell tagged ``solution`` is
  replaced by an empty exercise cell.

Outputs are empty and cell ids are numbered, so running it twice writes identical files
(``make notebooks`` then leaves ``git diff`` empty). ``--check`` writes nothing and exits 1 when a
notebook is out of date.
"""
import argparse
import pathlib
import sys

import jupytext
import nbformat

LABS = pathlib.Path(__file__).resolve().parent
STUDENT_STUB = "# Your solution here.\n"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


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


def student_version(notebook):
    """A copy whose ``solution`` cells hold only a stub for the student's code."""
    student = nbformat.from_dict(notebook)
    for cell in student.cells:
        if "solution" in cell.metadata.get("tags", []):
            cell.source = STUDENT_STUB
            cell.metadata["tags"] = [tag for tag in cell.metadata["tags"] if tag != "solution"] + ["exercise"]
    return student


def build(script):
    """``{path: text}`` of the teacher's and the student's notebooks of one lab script."""
    teacher = clean(jupytext.read(script, fmt="py:percent"))
    return {script.with_suffix(".ipynb"): notebook_text(teacher),
            LABS / "student" / script.with_suffix(".ipynb").name: notebook_text(student_version(teacher))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook is out of date; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for script in sorted(LABS.glob("lab[0-9]_*.py")):
        for path, text in build(script).items():
            if path.is_file() and path.read_text() == text:
                continue
            stale.append(path)
            if not args.check:
                path.parent.mkdir(exist_ok=True)
                tmp = path.with_suffix(".ipynb.tmp")
                tmp.write_text(text)
                tmp.replace(path)
                print("wrote", path.relative_to(LABS.parent))
    if args.check and stale:
        print("out of date:", ", ".join(str(path.relative_to(LABS.parent)) for path in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
