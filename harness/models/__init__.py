"""Backends: one module per provider, behind the `ModelBackend` interface."""

from harness.models.base import Capabilities, ModelBackend
from harness.models.registry import PROVIDERS, Provider, create_backend, validate_model

__all__ = [
    "PROVIDERS",
    "Capabilities",
    "ModelBackend",
    "Provider",
    "create_backend",
    "validate_model",
]
