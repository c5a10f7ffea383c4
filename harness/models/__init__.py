"""Backends: one module per provider, behind the `ModelBackend` interface.

The package exports the contracts only; `harness.models.registry` finds a spec's provider
(importing it here would load every provider's settings with any one backend).
"""

from mindshift.harness.models.base import Capabilities, ModelBackend, ModelRef

__all__ = ["Capabilities", "ModelBackend", "ModelRef"]
