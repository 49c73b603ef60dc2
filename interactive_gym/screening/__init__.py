"""Screening and exclusion: who may take part (entry rules) and who is excluded while playing (in-game rules).

Pure rule logic, no I/O; the server's shell is ``interactive_gym/server/flow/exclusion.py``. Researchers
declare rules with ``RemoteConfig().screening(entry=[...], in_game=[...])`` and ``GymScene(exclusion=[...])``.
"""

from interactive_gym.screening.entry import (
    EntryFacts,
    EntryVerdict,
    Failure,
    RuleError,
    judge_entry,
    needed_features,
)
from interactive_gym.screening.monitors import GameMonitors, Signal
from interactive_gym.screening.rules import (
    AllowedBrowsers,
    CustomRule,
    HiddenTab,
    Idle,
    MaxPing,
    MinWindowSize,
    NoMobileDevices,
    RequiredFeatures,
    ScreeningConfigError,
    SustainedRtt,
    TurnPretest,
    entry_rules,
    in_game_rules,
)

__all__ = [
    "AllowedBrowsers", "CustomRule", "EntryFacts", "EntryVerdict", "Failure", "GameMonitors", "HiddenTab", "Idle",
    "MaxPing", "MinWindowSize", "NoMobileDevices", "RequiredFeatures", "RuleError", "ScreeningConfigError",
    "Signal", "SustainedRtt", "TurnPretest", "entry_rules", "in_game_rules", "judge_entry", "needed_features",
]
