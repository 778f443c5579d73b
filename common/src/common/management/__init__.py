"""Django management commands shared by every service."""
