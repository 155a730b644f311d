from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_DEVICE: _ClassVar[Role]
    ROLE_SERVER: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
ROLE_DEVICE: Role
ROLE_SERVER: Role

class Knobs(_message.Message):
    __slots__ = ("split", "rho_device", "rho_server", "power_w", "freq_device_hz", "freq_server_hz")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    RHO_DEVICE_FIELD_NUMBER: _ClassVar[int]
    RHO_SERVER_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    FREQ_DEVICE_HZ_FIELD_NUMBER: _ClassVar[int]
    FREQ_SERVER_HZ_FIELD_NUMBER: _ClassVar[int]
    split: int
    rho_device: float
    rho_server: float
    power_w: float
    freq_device_hz: float
    freq_server_hz: float
    def __init__(self, split: _Optional[int] = ..., rho_device: _Optional[float] = ..., rho_server: _Optional[float] = ..., power_w: _Optional[float] = ..., freq_device_hz: _Optional[float] = ..., freq_server_hz: _Optional[float] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("t_device_s", "t_upload_s", "t_server_s", "latency_s", "e_device_j", "e_upload_j", "e_server_j", "energy_j", "rate_bps", "log2_distortion_bound", "t_fixed_s")
    T_DEVICE_S_FIELD_NUMBER: _ClassVar[int]
    T_UPLOAD_S_FIELD_NUMBER: _ClassVar[int]
    T_SERVER_S_FIELD_NUMBER: _ClassVar[int]
    LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    E_DEVICE_J_FIELD_NUMBER: _ClassVar[int]
    E_UPLOAD_J_FIELD_NUMBER: _ClassVar[int]
    E_SERVER_J_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    LOG2_DISTORTION_BOUND_FIELD_NUMBER: _ClassVar[int]
    T_FIXED_S_FIELD_NUMBER: _ClassVar[int]
    t_device_s: float
    t_upload_s: float
    t_server_s: float
    latency_s: float
    e_device_j: float
    e_upload_j: float
    e_server_j: float
    energy_j: float
    rate_bps: float
    log2_distortion_bound: float
    t_fixed_s: float
    def __init__(self, t_device_s: _Optional[float] = ..., t_upload_s: _Optional[float] = ..., t_server_s: _Optional[float] = ..., latency_s: _Optional[float] = ..., e_device_j: _Optional[float] = ..., e_upload_j: _Optional[float] = ..., e_server_j: _Optional[float] = ..., energy_j: _Optional[float] = ..., rate_bps: _Optional[float] = ..., log2_distortion_bound: _Optional[float] = ..., t_fixed_s: _Optional[float] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("version", "model", "method", "encoding", "knobs", "predicted", "reason", "reprofile", "device_id", "live_versions", "period_s", "slot_offset_s")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    KNOBS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPROFILE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    LIVE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_S_FIELD_NUMBER: _ClassVar[int]
    SLOT_OFFSET_S_FIELD_NUMBER: _ClassVar[int]
    version: int
    model: str
    method: str
    encoding: str
    knobs: Knobs
    predicted: Prediction
    reason: str
    reprofile: bool
    device_id: str
    live_versions: _containers.RepeatedScalarFieldContainer[int]
    period_s: float
    slot_offset_s: float
    def __init__(self, version: _Optional[int] = ..., model: _Optional[str] = ..., method: _Optional[str] = ..., encoding: _Optional[str] = ..., knobs: _Optional[_Union[Knobs, _Mapping]] = ..., predicted: _Optional[_Union[Prediction, _Mapping]] = ..., reason: _Optional[str] = ..., reprofile: _Optional[bool] = ..., device_id: _Optional[str] = ..., live_versions: _Optional[_Iterable[int]] = ..., period_s: _Optional[float] = ..., slot_offset_s: _Optional[float] = ...) -> None: ...

class SplitCost(_message.Message):
    __slots__ = ("split", "device_flops", "server_flops", "device_params", "server_params", "payload_bits")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FLOPS_FIELD_NUMBER: _ClassVar[int]
    SERVER_FLOPS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_PARAMS_FIELD_NUMBER: _ClassVar[int]
    SERVER_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BITS_FIELD_NUMBER: _ClassVar[int]
    split: int
    device_flops: float
    server_flops: float
    device_params: float
    server_params: float
    payload_bits: float
    def __init__(self, split: _Optional[int] = ..., device_flops: _Optional[float] = ..., server_flops: _Optional[float] = ..., device_params: _Optional[float] = ..., server_params: _Optional[float] = ..., payload_bits: _Optional[float] = ...) -> None: ...

class ComputeProfile(_message.Message):
    __slots__ = ("achieved_flops_per_s", "clock_hz", "flops_per_cycle", "f_max_hz", "clock_backend", "clock_emulated", "pue", "power_coeff", "clock_steps_hz", "f_min_hz", "flops_by_seq_len")
    ACHIEVED_FLOPS_PER_S_FIELD_NUMBER: _ClassVar[int]
    CLOCK_HZ_FIELD_NUMBER: _ClassVar[int]
    FLOPS_PER_CYCLE_FIELD_NUMBER: _ClassVar[int]
    F_MAX_HZ_FIELD_NUMBER: _ClassVar[int]
    CLOCK_BACKEND_FIELD_NUMBER: _ClassVar[int]
    CLOCK_EMULATED_FIELD_NUMBER: _ClassVar[int]
    PUE_FIELD_NUMBER: _ClassVar[int]
    POWER_COEFF_FIELD_NUMBER: _ClassVar[int]
    CLOCK_STEPS_HZ_FIELD_NUMBER: _ClassVar[int]
    F_MIN_HZ_FIELD_NUMBER: _ClassVar[int]
    FLOPS_BY_SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    achieved_flops_per_s: float
    clock_hz: float
    flops_per_cycle: float
    f_max_hz: float
    clock_backend: str
    clock_emulated: bool
    pue: float
    power_coeff: float
    clock_steps_hz: _containers.RepeatedScalarFieldContainer[float]
    f_min_hz: float
    flops_by_seq_len: _containers.RepeatedCompositeFieldContainer[SeqFlops]
    def __init__(self, achieved_flops_per_s: _Optional[float] = ..., clock_hz: _Optional[float] = ..., flops_per_cycle: _Optional[float] = ..., f_max_hz: _Optional[float] = ..., clock_backend: _Optional[str] = ..., clock_emulated: _Optional[bool] = ..., pue: _Optional[float] = ..., power_coeff: _Optional[float] = ..., clock_steps_hz: _Optional[_Iterable[float]] = ..., f_min_hz: _Optional[float] = ..., flops_by_seq_len: _Optional[_Iterable[_Union[SeqFlops, _Mapping]]] = ...) -> None: ...

class SeqFlops(_message.Message):
    __slots__ = ("seq_len", "achieved_flops_per_s")
    SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    ACHIEVED_FLOPS_PER_S_FIELD_NUMBER: _ClassVar[int]
    seq_len: int
    achieved_flops_per_s: float
    def __init__(self, seq_len: _Optional[int] = ..., achieved_flops_per_s: _Optional[float] = ...) -> None: ...

class LinkProfile(_message.Message):
    __slots__ = ("backend", "bandwidth_hz", "noise_psd_w_per_hz", "gain", "p_max_w", "applied_power_w", "measured_rate_bps", "rtt_s")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_HZ_FIELD_NUMBER: _ClassVar[int]
    NOISE_PSD_W_PER_HZ_FIELD_NUMBER: _ClassVar[int]
    GAIN_FIELD_NUMBER: _ClassVar[int]
    P_MAX_W_FIELD_NUMBER: _ClassVar[int]
    APPLIED_POWER_W_FIELD_NUMBER: _ClassVar[int]
    MEASURED_RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    RTT_S_FIELD_NUMBER: _ClassVar[int]
    backend: str
    bandwidth_hz: float
    noise_psd_w_per_hz: float
    gain: float
    p_max_w: float
    applied_power_w: float
    measured_rate_bps: float
    rtt_s: float
    def __init__(self, backend: _Optional[str] = ..., bandwidth_hz: _Optional[float] = ..., noise_psd_w_per_hz: _Optional[float] = ..., gain: _Optional[float] = ..., p_max_w: _Optional[float] = ..., applied_power_w: _Optional[float] = ..., measured_rate_bps: _Optional[float] = ..., rtt_s: _Optional[float] = ...) -> None: ...

class NodeProfile(_message.Message):
    __slots__ = ("model", "n_layers", "seq_len", "encoding", "splits", "compute", "link", "random_init", "server_node_id", "server_address", "fixed_latency_s", "fixed_latency_source")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    N_LAYERS_FIELD_NUMBER: _ClassVar[int]
    SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    RANDOM_INIT_FIELD_NUMBER: _ClassVar[int]
    SERVER_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FIXED_LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    FIXED_LATENCY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    model: str
    n_layers: int
    seq_len: int
    encoding: str
    splits: _containers.RepeatedCompositeFieldContainer[SplitCost]
    compute: ComputeProfile
    link: LinkProfile
    random_init: bool
    server_node_id: str
    server_address: str
    fixed_latency_s: float
    fixed_latency_source: str
    def __init__(self, model: _Optional[str] = ..., n_layers: _Optional[int] = ..., seq_len: _Optional[int] = ..., encoding: _Optional[str] = ..., splits: _Optional[_Iterable[_Union[SplitCost, _Mapping]]] = ..., compute: _Optional[_Union[ComputeProfile, _Mapping]] = ..., link: _Optional[_Union[LinkProfile, _Mapping]] = ..., random_init: _Optional[bool] = ..., server_node_id: _Optional[str] = ..., server_address: _Optional[str] = ..., fixed_latency_s: _Optional[float] = ..., fixed_latency_source: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("node_id", "role", "profile", "address", "applied_version")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_VERSION_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    role: Role
    profile: NodeProfile
    address: str
    applied_version: int
    def __init__(self, node_id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., profile: _Optional[_Union[NodeProfile, _Mapping]] = ..., address: _Optional[str] = ..., applied_version: _Optional[int] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("node_id", "current_version")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    current_version: int
    def __init__(self, node_id: _Optional[str] = ..., current_version: _Optional[int] = ...) -> None: ...

class WatchConfigRequest(_message.Message):
    __slots__ = ("node_id", "known_version")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    known_version: int
    def __init__(self, node_id: _Optional[str] = ..., known_version: _Optional[int] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("node_id", "version", "ok", "error", "applied", "sources")
    class SourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    version: int
    ok: bool
    error: str
    applied: Knobs
    sources: _containers.ScalarMap[str, str]
    def __init__(self, node_id: _Optional[str] = ..., version: _Optional[int] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., applied: _Optional[_Union[Knobs, _Mapping]] = ..., sources: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TelemetryReport(_message.Message):
    __slots__ = ("node_id", "config_version", "values", "sources", "profile")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    config_version: int
    values: _containers.ScalarMap[str, float]
    sources: _containers.ScalarMap[str, str]
    profile: NodeProfile
    def __init__(self, node_id: _Optional[str] = ..., config_version: _Optional[int] = ..., values: _Optional[_Mapping[str, float]] = ..., sources: _Optional[_Mapping[str, str]] = ..., profile: _Optional[_Union[NodeProfile, _Mapping]] = ...) -> None: ...

class TelemetryAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SolveRequest(_message.Message):
    __slots__ = ("problem_json", "solver", "scheme")
    PROBLEM_JSON_FIELD_NUMBER: _ClassVar[int]
    SOLVER_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    problem_json: str
    solver: str
    scheme: str
    def __init__(self, problem_json: _Optional[str] = ..., solver: _Optional[str] = ..., scheme: _Optional[str] = ...) -> None: ...

class SolveResponse(_message.Message):
    __slots__ = ("answer_json",)
    ANSWER_JSON_FIELD_NUMBER: _ClassVar[int]
    answer_json: str
    def __init__(self, answer_json: _Optional[str] = ...) -> None: ...
