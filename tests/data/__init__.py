"""Tests of keras_tl/data/."""
