"""copyhound's local demo web: several fictional news sites on loopback, one story, its
derivatives (copy, excerpt, rewrite) and independent reports of the same event."""

from .web import (
    DemoSite,
    DemoWeb,
    DemoWebError,
    demo_story,
    expected_derivatives,
    independent_reports,
    origin_path,
)

__all__ = [
    "DemoSite",
    "DemoWeb",
    "DemoWebError",
    "demo_story",
    "expected_derivatives",
    "independent_reports",
    "origin_path",
]
