"""gRPC plumbing shared by the services: server, client channels, error outcomes.

Servicers and their callers live in the services; this package only answers how a
process serves gRPC (with health and sane Django DB connections), how it reaches
another service (one long-lived channel to the edge per process), how a servicer
answers an error (`common.grpc.servicer.answer`), and what a saga must do when a call
fails.
"""

from common.grpc.client import (
    call,
    channel,
    close_channels,
    default_target,
    health_check,
    stub,
)
from common.grpc.errors import BUSINESS_CODES, TRANSIENT_CODES, Outcome, classify, classify_error
from common.grpc.server import GrpcServer, Registrar, ServicerSpec, build_server, serve_forever

__all__ = [
    "BUSINESS_CODES",
    "TRANSIENT_CODES",
    "GrpcServer",
    "Outcome",
    "Registrar",
    "ServicerSpec",
    "build_server",
    "call",
    "channel",
    "classify",
    "classify_error",
    "close_channels",
    "default_target",
    "health_check",
    "serve_forever",
    "stub",
]
