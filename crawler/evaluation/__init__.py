"""Offline evaluation of the matcher on labelled corpora."""
