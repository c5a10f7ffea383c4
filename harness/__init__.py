"""mindshift's engine: config, trial identity, backends, planner, runner and run store."""

from mindshift.harness.config import ExperimentConfig, ModelSection, load_config, parse_config
from mindshift.harness.errors import ConfigError, RunDirError, UserError
from mindshift.harness.experiment import PreparedExperiment, execute, prepare
from mindshift.harness.paradigm import (
    Condition,
    InitialAnswer,
    Paradigm,
    StagePrompt,
    TrialColumns,
    TurnAnswer,
    TwoTurnParadigm,
)
from mindshift.harness.record import CallRecord
from mindshift.harness.runner import ExperimentRunner, ProgressSink, RunReport
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    Item,
    Message,
    OptionReadout,
    Prompt,
    TurnFacts,
    Usage,
)

__all__ = [
    "CallRecord",
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
    "TrialColumns",
    "TurnAnswer",
    "TurnFacts",
    "TwoTurnParadigm",
    "Usage",
    "UserError",
    "execute",
    "load_config",
    "parse_config",
    "prepare",
]
