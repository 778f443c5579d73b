from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderItem(_message.Message):
    __slots__ = ("product_id", "quantity", "unit_price", "name")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    quantity: int
    unit_price: int
    name: str
    def __init__(self, product_id: _Optional[int] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class CreateOrderRequest(_message.Message):
    __slots__ = ("purchase_id", "customer_id", "items")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    customer_id: int
    items: _containers.RepeatedCompositeFieldContainer[OrderItem]
    def __init__(self, purchase_id: _Optional[str] = ..., customer_id: _Optional[int] = ..., items: _Optional[_Iterable[_Union[OrderItem, _Mapping]]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("purchase_id",)
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    def __init__(self, purchase_id: _Optional[str] = ...) -> None: ...

class OrderReply(_message.Message):
    __slots__ = ("order_id", "status", "amount")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    status: str
    amount: int
    def __init__(self, order_id: _Optional[str] = ..., status: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class CreateOrderBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CreateOrderRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[CreateOrderRequest, _Mapping]]] = ...) -> None: ...

class CancelOrderBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CancelOrderRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[CancelOrderRequest, _Mapping]]] = ...) -> None: ...

class OrderBatchResult(_message.Message):
    __slots__ = ("code", "message", "error_code", "reply")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    error_code: str
    reply: OrderReply
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., error_code: _Optional[str] = ..., reply: _Optional[_Union[OrderReply, _Mapping]] = ...) -> None: ...

class OrderBatchReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[OrderBatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[OrderBatchResult, _Mapping]]] = ...) -> None: ...

class GetOrdersRequest(_message.Message):
    __slots__ = ("purchase_ids",)
    PURCHASE_IDS_FIELD_NUMBER: _ClassVar[int]
    purchase_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, purchase_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[OrderReply]
    def __init__(self, orders: _Optional[_Iterable[_Union[OrderReply, _Mapping]]] = ...) -> None: ...
