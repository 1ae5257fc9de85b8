"""Application model, its two file formats and validation.

Public API: :class:`App`, :class:`Task`, :func:`load_app` (see ``loader``), ``HOME``.
"""

from jupiter.app.loader import inspect_app, load_app
from jupiter.app.model import HOME, SCHEMA, App, Task, is_dns_label, safe_key

__all__ = [
    "HOME", "SCHEMA", "App", "Task", "inspect_app", "is_dns_label", "load_app", "safe_key",
]
