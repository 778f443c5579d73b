"""The account API under /api/v1/account: thin views over services and selectors."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from account_svc.accounts import login_clients, selectors, services
from account_svc.accounts.conf import config
from account_svc.accounts.models import (
    ADDRESS_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    PHONE_MAX_LENGTH,
    Customer,
)
from account_svc.accounts.serializers import AccountInputSerializer, PhoneNumberField
from common.apis import get_or_404
from common.auth import customer_of
from common.openapi import ErrorResponses
from common.serializers import StrictCharField, StrictEmailField

PASSWORD_MAX_LENGTH = 128

_errors = ErrorResponses(
    {
        400: "invalid input",
        401: "not authenticated",
        404: "not found",
        409: "conflict",
        413: "body too large",
        429: "throttled",
    }
)


def _password_field() -> StrictCharField:
    return StrictCharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True)


class TokenPairOutputSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="seconds until the access token expires")


def _token_pair_response(pair: services.TokenPair, status_code: int = 200) -> Response:
    return Response(TokenPairOutputSerializer(pair).data, status=status_code)


def _client_ip(request: Request) -> str | None:
    """The client's address: the hop the edge appended to X-Forwarded-For (the last
    REST_FRAMEWORK.NUM_PROXIES-th, 1 for Traefik, which drops a client's own header),
    else REMOTE_ADDR."""
    return BaseThrottle().get_ident(request) or None


_DEVICE_COOKIE_DOC = (
    f"Sets the `{login_clients.DEVICE_COOKIE}` cookie (HttpOnly, sent back to the login"
    " only): a client that keeps it is known as the account owner's and is not slowed by"
    " other clients' failed logins to the account."
)


def _device_token(request: Request) -> str | None:
    return request.COOKIES.get(login_clients.DEVICE_COOKIE)


def _with_device_cookie(response: Response, device_token: str) -> Response:
    """Mark the client as the owner's (docs/adr/0016): sent back to the login only,
    out of reach of scripts and of other sites' requests."""
    conf = config()
    response.set_cookie(
        login_clients.DEVICE_COOKIE,
        device_token,
        max_age=conf.known_client_seconds,
        path=reverse("auth-login"),
        secure=conf.device_cookie_secure,
        httponly=True,
        samesite="Strict",
    )
    return response


class PublicApi(APIView):
    """Endpoints that take credentials in the body, not a Bearer token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]


class RegisterApi(PublicApi):
    class InputSerializer(AccountInputSerializer):
        email = StrictEmailField(max_length=EMAIL_MAX_LENGTH)
        password = _password_field()
        first_name = StrictCharField(max_length=NAME_MAX_LENGTH)
        last_name = StrictCharField(max_length=NAME_MAX_LENGTH)
        address = StrictCharField(max_length=ADDRESS_MAX_LENGTH)
        phone_number = PhoneNumberField(max_length=PHONE_MAX_LENGTH)

    @extend_schema(
        request=InputSerializer,
        responses={201: TokenPairOutputSerializer, **_errors(400, 409, 413)},
        summary="Register a customer and answer its first token pair",
        description=_DEVICE_COOKIE_DOC,
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_register(**serializer.validated_data)
        device_token = services.login_client_trust(
            email=customer.email, client_ip=_client_ip(request), device_token=_device_token(request)
        )
        response = _token_pair_response(
            services.token_pair_issue(customer=customer), status.HTTP_201_CREATED
        )
        return _with_device_cookie(response, device_token)


class LoginApi(PublicApi):
    class InputSerializer(AccountInputSerializer):
        email = StrictEmailField(max_length=EMAIL_MAX_LENGTH)
        password = _password_field()

    @extend_schema(
        request=InputSerializer,
        responses={200: TokenPairOutputSerializer, **_errors(400, 401, 429)},
        summary="Log in with email and password",
        description=_DEVICE_COOKIE_DOC
        + " Repeated failures answer 429 with Retry-After: from one client for one account,"
        " from one client address for any account, and from clients the account does not"
        " know once the account draws guesses from many (docs/adr/0016).",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sign_in = services.customer_login(
            **serializer.validated_data,
            client_ip=_client_ip(request),
            device_token=_device_token(request),
        )
        return _with_device_cookie(_token_pair_response(sign_in.pair), sign_in.device_token)


class RefreshTokenInputSerializer(AccountInputSerializer):
    refresh_token = StrictCharField(max_length=4096)


class RefreshApi(PublicApi):
    @extend_schema(
        request=RefreshTokenInputSerializer,
        responses={200: TokenPairOutputSerializer, **_errors(400, 401)},
        summary="Rotate a refresh token: the old one stops working",
    )
    def post(self, request: Request) -> Response:
        serializer = RefreshTokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.token_pair_refresh(**serializer.validated_data)
        return _token_pair_response(pair)


class LogoutApi(PublicApi):
    @extend_schema(
        request=RefreshTokenInputSerializer,
        responses={204: None, **_errors(400, 401)},
        summary="Revoke a refresh token",
    )
    def post(self, request: Request) -> Response:
        serializer = RefreshTokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.token_revoke(**serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _current_customer(request: Request) -> Customer:
    """The active customer the access token names; 404 when gone or deactivated."""
    return get_or_404(
        selectors.customer_get_active(customer_id=customer_of(request).id),
        "The customer does not exist.",
    )


class PersonalApi(APIView):
    class InputSerializer(AccountInputSerializer):
        email = StrictEmailField(max_length=EMAIL_MAX_LENGTH)
        first_name = StrictCharField(max_length=NAME_MAX_LENGTH)
        last_name = StrictCharField(max_length=NAME_MAX_LENGTH)
        phone_number = PhoneNumberField(max_length=PHONE_MAX_LENGTH)

    class OutputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        first_name = serializers.CharField()
        last_name = serializers.CharField()
        phone_number = serializers.CharField()

    @extend_schema(
        responses={200: OutputSerializer, **_errors(401, 404)},
        summary="The customer's personal data",
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(_current_customer(request)).data)

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **_errors(400, 401, 404, 409)},
        summary="Replace the customer's personal data",
    )
    def put(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_personal_update(
            customer=_current_customer(request), **serializer.validated_data
        )
        return Response(self.OutputSerializer(customer).data)


class DeliveryApi(APIView):
    class InputSerializer(AccountInputSerializer):
        address = StrictCharField(max_length=ADDRESS_MAX_LENGTH)

    class OutputSerializer(serializers.Serializer):
        address = serializers.CharField()

    @extend_schema(
        responses={200: OutputSerializer, **_errors(401, 404)},
        summary="The customer's delivery address",
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(_current_customer(request)).data)

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **_errors(400, 401, 404)},
        summary="Replace the customer's delivery address",
    )
    def put(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_delivery_update(
            customer=_current_customer(request), **serializer.validated_data
        )
        return Response(self.OutputSerializer(customer).data)
