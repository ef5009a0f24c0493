"""skdml's settings (speculation, retries, fan-in, ...), stored in ``dask.config``.

See :func:`set` and :func:`get`; the settings and their defaults are in ``defaults``.
"""
from ._config import defaults, get, set  # noqa: A004

__all__ = ["defaults", "get", "set"]
