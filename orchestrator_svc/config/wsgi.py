"""WSGI entry point for gunicorn: `gunicorn orchestrator_svc.config.wsgi:application`."""

from common.manage import wsgi_application

application = wsgi_application("orchestrator")
