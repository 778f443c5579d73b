"""The purchase service."""
