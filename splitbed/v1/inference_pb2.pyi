from splitbed.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SplitIdentity(_message.Message):
    __slots__ = ("model", "split", "rho_device", "rho_server", "method", "config_version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    RHO_DEVICE_FIELD_NUMBER: _ClassVar[int]
    RHO_SERVER_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    split: int
    rho_device: float
    rho_server: float
    method: str
    config_version: int
    def __init__(self, model: _Optional[str] = ..., split: _Optional[int] = ..., rho_device: _Optional[float] = ..., rho_server: _Optional[float] = ..., method: _Optional[str] = ..., config_version: _Optional[int] = ...) -> None: ...

class DeviceTimings(_message.Message):
    __slots__ = ("device_compute_s", "encode_s", "sent_unix_ns", "device_stretch_s")
    DEVICE_COMPUTE_S_FIELD_NUMBER: _ClassVar[int]
    ENCODE_S_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_STRETCH_S_FIELD_NUMBER: _ClassVar[int]
    device_compute_s: float
    encode_s: float
    sent_unix_ns: int
    device_stretch_s: float
    def __init__(self, device_compute_s: _Optional[float] = ..., encode_s: _Optional[float] = ..., sent_unix_ns: _Optional[int] = ..., device_stretch_s: _Optional[float] = ...) -> None: ...

class InferRequest(_message.Message):
    __slots__ = ("request_id", "identity", "hidden", "attention_mask", "timings", "run_id", "seq")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    ATTENTION_MASK_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    identity: SplitIdentity
    hidden: _tensor_pb2.Tensor
    attention_mask: _tensor_pb2.Tensor
    timings: DeviceTimings
    run_id: str
    seq: int
    def __init__(self, request_id: _Optional[str] = ..., identity: _Optional[_Union[SplitIdentity, _Mapping]] = ..., hidden: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., attention_mask: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., timings: _Optional[_Union[DeviceTimings, _Mapping]] = ..., run_id: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class ServerTimings(_message.Message):
    __slots__ = ("decode_s", "queue_s", "server_compute_s", "server_stretch_s", "received_unix_ns", "sent_unix_ns")
    DECODE_S_FIELD_NUMBER: _ClassVar[int]
    QUEUE_S_FIELD_NUMBER: _ClassVar[int]
    SERVER_COMPUTE_S_FIELD_NUMBER: _ClassVar[int]
    SERVER_STRETCH_S_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    decode_s: float
    queue_s: float
    server_compute_s: float
    server_stretch_s: float
    received_unix_ns: int
    sent_unix_ns: int
    def __init__(self, decode_s: _Optional[float] = ..., queue_s: _Optional[float] = ..., server_compute_s: _Optional[float] = ..., server_stretch_s: _Optional[float] = ..., received_unix_ns: _Optional[int] = ..., sent_unix_ns: _Optional[int] = ...) -> None: ...

class InferResponse(_message.Message):
    __slots__ = ("request_id", "embedding", "timings", "config_version", "rho_server_applied", "server_energy_j", "server_energy_source", "replayed")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    RHO_SERVER_APPLIED_FIELD_NUMBER: _ClassVar[int]
    SERVER_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    SERVER_ENERGY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    embedding: _tensor_pb2.Tensor
    timings: ServerTimings
    config_version: int
    rho_server_applied: float
    server_energy_j: float
    server_energy_source: str
    replayed: bool
    def __init__(self, request_id: _Optional[str] = ..., embedding: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., timings: _Optional[_Union[ServerTimings, _Mapping]] = ..., config_version: _Optional[int] = ..., rho_server_applied: _Optional[float] = ..., server_energy_j: _Optional[float] = ..., server_energy_source: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServedPart(_message.Message):
    __slots__ = ("identity", "achieved_rho", "params")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ACHIEVED_RHO_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    identity: SplitIdentity
    achieved_rho: float
    params: int
    def __init__(self, identity: _Optional[_Union[SplitIdentity, _Mapping]] = ..., achieved_rho: _Optional[float] = ..., params: _Optional[int] = ...) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("model", "n_layers", "hidden_size", "max_seq_len", "parts", "max_message_bytes", "random_init", "label")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    N_LAYERS_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RANDOM_INIT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    n_layers: int
    hidden_size: int
    max_seq_len: int
    parts: _containers.RepeatedCompositeFieldContainer[ServedPart]
    max_message_bytes: int
    random_init: bool
    label: str
    def __init__(self, model: _Optional[str] = ..., n_layers: _Optional[int] = ..., hidden_size: _Optional[int] = ..., max_seq_len: _Optional[int] = ..., parts: _Optional[_Iterable[_Union[ServedPart, _Mapping]]] = ..., max_message_bytes: _Optional[int] = ..., random_init: _Optional[bool] = ..., label: _Optional[str] = ...) -> None: ...
