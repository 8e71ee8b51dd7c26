"""The value types a numeric feature may have, and how LeRobot v3.0 stores each: the one owner.

A feature is a vector of `shape` (n,) values of one `dtype`, named as info.json names it:
"float32" (the default), "float64", "int32", "int64" or "bool" (DAgger's `intervention`).
LeRobot (0.4.4 and 0.6.1 alike) stores a (1,) feature as a plain column of that type and an (n,)
one as a fixed-size list; its loader casts each file to that schema, so a (1,) feature stored as
a list would not load. A caller declares a feature as `(n,)` (float32) or `((n,), dtype)`;
FeatureSpec is that pair, so the two spellings compare equal.

Stats are computed over the values as float64 (LeRobot 0.6.1 promotes them the same way, bools
to 0.0/1.0); min and max of integer features stay integers, as for LeRobot's index columns
(LeRobot 0.4.4 writes them so, 0.6.1 as floats; both load either). Integers beyond 2**53 are
stored exactly, but their stats are float64's, as LeRobot's are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from shmpipe.errors import ConfigError

DTYPES = ("float32", "float64", "int32", "int64", "bool")
DEFAULT_DTYPE = "float32"


class FeatureSpec(NamedTuple):
    """A numeric feature: its shape (n,) and the dtype of its values (one of DTYPES)."""

    shape: tuple[int, ...]
    dtype: str = DEFAULT_DTYPE

    @property
    def width(self) -> int:
        """Values per row."""
        return int(np.prod(self.shape))

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def integer(self) -> bool:
        """Integer values: their stats keep min and max as integers (as the index columns)."""
        return self.numpy.kind in "iu"

    @property
    def scalar(self) -> bool:
        """Stored as a plain column (shape (1,)), not as a list, as LeRobot stores it."""
        return tuple(self.shape) == (1,)

    def arrow_type(self) -> pa.DataType:
        """The parquet column's type."""
        value = pa.from_numpy_dtype(self.numpy)
        return value if self.scalar else pa.list_(value, self.width)

    def arrow_array(self, values: np.ndarray) -> pa.Array:
        """The column of (rows, width) values."""
        flat = pa.array(np.ascontiguousarray(values, self.numpy).reshape(-1))
        return flat if self.scalar else pa.FixedSizeListArray.from_arrays(flat, self.width)

    def hf_feature(self) -> dict:
        """The column's entry in the `huggingface` schema metadata (datasets' Value / List)."""
        value = {"dtype": self.dtype, "_type": "Value"}
        return value if self.scalar else {"feature": value, "length": self.width, "_type": "List"}

    def info_entry(self, names: list[str] | None = None) -> dict:
        """The feature's entry in info.json's features."""
        return {"dtype": self.dtype, "shape": [int(d) for d in self.shape], "names": names}


def described(features: Mapping[str, FeatureSpec]) -> str:
    """Features for a message: "[state float32 (6,), intervention bool (1,)]"."""
    return "[" + ", ".join(f"{n} {s.dtype} {tuple(s.shape)}" for n, s in features.items()) + "]"


def feature_spec(name: str, declared: object) -> FeatureSpec:
    """A caller's declaration of feature `name`, `(n,)` or `((n,), dtype)` (a FeatureSpec is
    the latter), as a FeatureSpec; ConfigError naming the feature for an unknown dtype. The
    shape is checked by shmpipe.dataset.info.check_names."""
    shape, dtype = declared, DEFAULT_DTYPE
    if (isinstance(declared, tuple | list) and len(declared) == 2
            and isinstance(declared[1], str | np.dtype | type)):  # fmt: skip
        shape, dtype = declared
        dtype = _dtype_name(name, dtype)
    if not isinstance(shape, tuple | list):
        raise ConfigError(f"feature {name!r}: expected a shape (n,) or ((n,), dtype) with dtype "
                          f"one of {list(DTYPES)}, got {declared!r}")  # fmt: skip
    return FeatureSpec(tuple(shape), dtype)


def _dtype_name(name: str, dtype: object) -> str:
    try:
        found = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:
        found = str(dtype)
    if found not in DTYPES:
        raise ConfigError(f"feature {name!r}: dtype {dtype!r} is not supported; expected one of "
                          f"{list(DTYPES)}")  # fmt: skip
    return found


def specs_of(features: Mapping[str, object] | None) -> dict[str, FeatureSpec]:
    """Every declared feature as a FeatureSpec, shapes as tuples of ints."""
    out = {}
    for name, declared in (features or {}).items():
        spec = feature_spec(name, declared)
        out[name] = FeatureSpec(tuple(_size(d) for d in spec.shape), spec.dtype)
    return out


def _size(d: object) -> object:
    """A size as an int when it is one (check_names refuses the rest, naming them)."""
    return int(d) if hasattr(d, "__index__") and not isinstance(d, bool) else d


def from_info(name: str, entry: Mapping) -> FeatureSpec:
    """A numeric feature of an info.json; ConfigError naming it if shmpipe cannot record it
    (a string or language feature, an image stored in parquet, an unknown dtype)."""
    dtype = entry.get("dtype")
    if dtype not in DTYPES:
        raise ConfigError(f"feature {name!r}: dtype {dtype!r} cannot be recorded by shmpipe; "
                          f"numeric features are one of {list(DTYPES)}")  # fmt: skip
    return FeatureSpec(tuple(int(d) for d in entry.get("shape", ())), dtype)


def integer_columns(entries: Mapping[str, object]) -> frozenset[str]:
    """The columns of info.json's `features` that hold integers (LeRobot's index columns too):
    their stats keep min and max as integers."""
    return frozenset(name for name, entry in entries.items()
                     if isinstance(entry, Mapping) and _is_integer(entry.get("dtype")))  # fmt: skip


def _is_integer(dtype: object) -> bool:
    try:
        return isinstance(dtype, str) and np.dtype(dtype).kind in "iu"
    except TypeError:
        return False
