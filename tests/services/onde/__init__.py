"""Tests of the ONDE import."""
