"""Tests of keras_tl/jobs/."""
