"""Tests of keras_tl/features/."""
