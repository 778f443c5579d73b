from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

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
