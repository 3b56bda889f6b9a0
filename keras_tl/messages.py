"""What users read: "did you mean" suggestions, plain-text tables and progress bars.

Every error that names a bad value lists the nearest valid ones (the design notes' convention),
every job ends with a table, and every long loop shows one kind of progress bar, the same in a
terminal and in a notebook (``tqdm.auto``).
"""
import difflib

import numpy as np


def close_matches(name, candidates, n=5, cutoff=0.4):
    """The candidates nearest to ``name`` (for error messages), best first."""
    return difflib.get_close_matches(str(name), [str(candidate) for candidate in candidates], n=n, cutoff=cutoff)


def did_you_mean(name, candidates, n=3, cutoff=0.4):
    """``" Did you mean a, b?"`` for the candidates close to ``name``, or ``""`` when none is close."""
    suggestions = close_matches(name, candidates, n=n, cutoff=cutoff)
    return f" Did you mean {', '.join(suggestions)}?" if suggestions else ""


def unknown_layer_error(name, layer_names, model_name, hint=""):
    """The ``ValueError`` for a layer name that ``model_name`` lacks, listing the closest names."""
    suggestions = close_matches(name, layer_names)
    return ValueError(f"Unknown layer {name!r} in {model_name}.{hint} "
                      f"Closest layer names: {', '.join(suggestions) or 'none'}.")


def describe_layers(names):
    """Layer names for a plan: all of them when few, else the first two, the last and the count."""
    if not names:
        return "none"
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, ... {names[-1]} ({len(names)} layers)"


def format_table(rows, headers):
    """Return ``rows`` (a list of sequences) as a plain-text table with aligned columns."""
    cells = [[str(header) for header in headers]] + [[_format_cell(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _format_cell(cell):
    if isinstance(cell, (float, np.floating)):
        return f"{cell:.4g}"
    return str(cell)


def progress_bar(total, description, unit="image", verbose=True, initial=0):
    """A ``tqdm.auto`` bar (a widget in notebooks, a text line in terminals); silent when not ``verbose``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, initial=initial, disable=not verbose,
                dynamic_ncols=True, leave=True)
