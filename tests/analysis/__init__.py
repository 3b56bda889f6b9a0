"""Tests of keras_tl/analysis/."""
