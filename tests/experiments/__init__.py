"""Tests of keras_tl/experiments/."""
