"""Backends: one module per provider, behind the `ModelBackend` interface."""

from harness.models.base import Capabilities, ModelBackend
from harness.models.provider import ENTRY_POINT_GROUP, Provider
from harness.models.registry import PROVIDERS, create_backend, validate_model

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROVIDERS",
    "Capabilities",
    "ModelBackend",
    "Provider",
    "create_backend",
    "validate_model",
]
