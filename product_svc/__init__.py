"""The product service."""
