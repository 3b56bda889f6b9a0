"""Tests of keras_tl, one folder per part of the package (tests/data/ for keras_tl/data/, ...)."""
