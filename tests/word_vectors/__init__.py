"""Tests of keras_tl/word_vectors/."""
