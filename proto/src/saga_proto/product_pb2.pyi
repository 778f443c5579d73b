from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PurchaseItem(_message.Message):
    __slots__ = ("product_id", "quantity")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    quantity: int
    def __init__(self, product_id: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class ProductStatus(_message.Message):
    __slots__ = ("product_id", "exist", "price", "inventory", "enough", "name")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    EXIST_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    ENOUGH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    product_id: int
    exist: bool
    price: int
    inventory: int
    enough: bool
    name: str
    def __init__(self, product_id: _Optional[int] = ..., exist: _Optional[bool] = ..., price: _Optional[int] = ..., inventory: _Optional[int] = ..., enough: _Optional[bool] = ..., name: _Optional[str] = ...) -> None: ...

class CheckProductsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[PurchaseItem]
    def __init__(self, items: _Optional[_Iterable[_Union[PurchaseItem, _Mapping]]] = ...) -> None: ...

class CheckProductsResponse(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[ProductStatus]
    def __init__(self, products: _Optional[_Iterable[_Union[ProductStatus, _Mapping]]] = ...) -> None: ...

class Product(_message.Message):
    __slots__ = ("id", "category_id", "name", "description", "brand_name", "price", "inventory")
    ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BRAND_NAME_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    id: int
    category_id: int
    name: str
    description: str
    brand_name: str
    price: int
    inventory: int
    def __init__(self, id: _Optional[int] = ..., category_id: _Optional[int] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., brand_name: _Optional[str] = ..., price: _Optional[int] = ..., inventory: _Optional[int] = ...) -> None: ...

class GetProductsRequest(_message.Message):
    __slots__ = ("product_ids",)
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    product_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, product_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetProductsResponse(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[Product]
    def __init__(self, products: _Optional[_Iterable[_Union[Product, _Mapping]]] = ...) -> None: ...

class ReserveInventoryRequest(_message.Message):
    __slots__ = ("purchase_id", "items")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    items: _containers.RepeatedCompositeFieldContainer[PurchaseItem]
    def __init__(self, purchase_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[PurchaseItem, _Mapping]]] = ...) -> None: ...

class ReserveInventoryResponse(_message.Message):
    __slots__ = ("purchase_id", "reserved")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    reserved: _containers.RepeatedCompositeFieldContainer[PurchaseItem]
    def __init__(self, purchase_id: _Optional[str] = ..., reserved: _Optional[_Iterable[_Union[PurchaseItem, _Mapping]]] = ...) -> None: ...

class ReleaseInventoryRequest(_message.Message):
    __slots__ = ("purchase_id",)
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    def __init__(self, purchase_id: _Optional[str] = ...) -> None: ...

class ReleaseInventoryResponse(_message.Message):
    __slots__ = ("purchase_id", "released")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    released: bool
    def __init__(self, purchase_id: _Optional[str] = ..., released: _Optional[bool] = ...) -> None: ...

class ReserveInventoryBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ReserveInventoryRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[ReserveInventoryRequest, _Mapping]]] = ...) -> None: ...

class ReleaseInventoryBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ReleaseInventoryRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[ReleaseInventoryRequest, _Mapping]]] = ...) -> None: ...

class InventoryBatchResult(_message.Message):
    __slots__ = ("code", "message", "error_code")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    error_code: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., error_code: _Optional[str] = ...) -> None: ...

class InventoryBatchReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[InventoryBatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[InventoryBatchResult, _Mapping]]] = ...) -> None: ...

class GetReservationsRequest(_message.Message):
    __slots__ = ("purchase_ids",)
    PURCHASE_IDS_FIELD_NUMBER: _ClassVar[int]
    purchase_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, purchase_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("purchase_id", "state", "lines")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    state: str
    lines: _containers.RepeatedCompositeFieldContainer[PurchaseItem]
    def __init__(self, purchase_id: _Optional[str] = ..., state: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[PurchaseItem, _Mapping]]] = ...) -> None: ...

class GetReservationsResponse(_message.Message):
    __slots__ = ("reservations",)
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[Reservation]
    def __init__(self, reservations: _Optional[_Iterable[_Union[Reservation, _Mapping]]] = ...) -> None: ...
