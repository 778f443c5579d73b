from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreatePaymentRequest(_message.Message):
    __slots__ = ("purchase_id", "customer_id", "amount", "currency_code")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    customer_id: int
    amount: int
    currency_code: str
    def __init__(self, purchase_id: _Optional[str] = ..., customer_id: _Optional[int] = ..., amount: _Optional[int] = ..., currency_code: _Optional[str] = ...) -> None: ...

class RefundPaymentRequest(_message.Message):
    __slots__ = ("purchase_id",)
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    def __init__(self, purchase_id: _Optional[str] = ...) -> None: ...

class PaymentReply(_message.Message):
    __slots__ = ("payment_id", "status", "amount", "currency_code")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    status: str
    amount: int
    currency_code: str
    def __init__(self, payment_id: _Optional[str] = ..., status: _Optional[str] = ..., amount: _Optional[int] = ..., currency_code: _Optional[str] = ...) -> None: ...

class CreatePaymentBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CreatePaymentRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[CreatePaymentRequest, _Mapping]]] = ...) -> None: ...

class RefundPaymentBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RefundPaymentRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[RefundPaymentRequest, _Mapping]]] = ...) -> None: ...

class PaymentBatchResult(_message.Message):
    __slots__ = ("code", "message", "error_code", "reply")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    error_code: str
    reply: PaymentReply
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., error_code: _Optional[str] = ..., reply: _Optional[_Union[PaymentReply, _Mapping]] = ...) -> None: ...

class PaymentBatchReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PaymentBatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PaymentBatchResult, _Mapping]]] = ...) -> None: ...

class GetPaymentsRequest(_message.Message):
    __slots__ = ("purchase_ids",)
    PURCHASE_IDS_FIELD_NUMBER: _ClassVar[int]
    purchase_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, purchase_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPaymentsResponse(_message.Message):
    __slots__ = ("payments",)
    PAYMENTS_FIELD_NUMBER: _ClassVar[int]
    payments: _containers.RepeatedCompositeFieldContainer[PaymentReply]
    def __init__(self, payments: _Optional[_Iterable[_Union[PaymentReply, _Mapping]]] = ...) -> None: ...
