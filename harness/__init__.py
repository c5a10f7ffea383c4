"""mindshift's engine: config, trial identity, backends, runner, run store and CLI."""

from harness.config import ExperimentConfig, ModelSection, load_config, parse_config
from harness.errors import ConfigError, RunDirError, UserError
from harness.experiment import PreparedExperiment, execute, prepare
from harness.paradigm import Condition, InitialAnswer, Item, Paradigm, StagePrompt
from harness.runner import ExperimentRunner, ProgressSink, RunReport
from harness.types import ChoiceRequest, ChoiceResponse, Message, OptionReadout, Prompt, Usage

__all__ = [
    "ChoiceRequest",
    "ChoiceResponse",
    "Condition",
    "ConfigError",
    "ExperimentConfig",
    "ExperimentRunner",
    "InitialAnswer",
    "Item",
    "Message",
    "ModelSection",
    "OptionReadout",
    "Paradigm",
    "PreparedExperiment",
    "ProgressSink",
    "Prompt",
    "RunDirError",
    "RunReport",
    "StagePrompt",
    "Usage",
    "UserError",
    "execute",
    "load_config",
    "parse_config",
    "prepare",
]
