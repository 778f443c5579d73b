"""Shared library of the saga services."""
