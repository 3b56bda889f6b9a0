"""Tests of keras_tl/training/."""
