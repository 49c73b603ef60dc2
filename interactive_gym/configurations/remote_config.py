"""RemoteConfig: the experiment's server settings, written fluently in the experiment file.

Every method returns ``self``::

    config = (
        RemoteConfig()
        .hosting(host="127.0.0.1", port=8000)
        .experiment("my_study", stager=stager, data_dir="data")
        .webrtc(turn_username=None, turn_credential=None)   # TURN_USERNAME / TURN_CREDENTIAL env vars otherwise
    )

Nothing is checked while the file is read; :meth:`RemoteConfig.validate` checks everything at start-up, before
any participant arrives, and raises :class:`ConfigError` with the list of what to change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from interactive_gym.scenes.keep_group import check_keep_groups
from interactive_gym.scenes.scene import SceneConfigError
from interactive_gym.scenes.stager import Stager
from interactive_gym.server.storage_postgres import is_postgres_url

_EXPERIMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ConfigError(ValueError):
    """Start-up configuration problems; ``problems`` lists each with what to change."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class RemoteConfig:
    """Settings of one experiment server."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 8000
        self.experiment_id = "experiment"
        self.stager: Stager | None = None
        self.data_dir = Path("data")
        self.db_path: Path | str | None = None  # an SQLite file, or a postgresql:// URL (kept as a string)
        self.base_dir = Path.cwd()
        self.pyodide_index_url: str | None = None
        self.pyodide_packages: list[str] = []
        self.webrtc_args: dict[str, Any] = {}
        # An id URL parameter every new participant must bring (recruitment(require_prolific_pid=True)).
        self.required_id_param: str | None = None
        self.webrtc_settings: Any = None
        # Tests and benchmarks only: a seeded fault profile {seed, rttMs, jitterMs, loss} that every p2p page's
        # transport applies (browser DevTools throttling does not reach DataChannels). None in real experiments.
        self.test_faults: Mapping[str, float] | None = None
        # screening(): the declared lists, and the checked rules after validate().
        self.screening_args: dict[str, Any] = {}
        self.entry_screening: tuple[Any, ...] = ()
        self.in_game_screening: tuple[Any, ...] = ()

    def hosting(self, host: str | None = None, port: int | None = None) -> RemoteConfig:
        """Where the server listens (default 127.0.0.1:8000). Use ``0.0.0.0`` behind a reverse proxy."""
        if host is not None:
            self.host = host
        if port is not None:
            self.port = port
        return self

    def experiment(self, experiment_id: str | None = None, stager: Stager | None = None,
                   data_dir: str | Path | None = None, db: str | Path | None = None) -> RemoteConfig:
        """The experiment's id, its scenes, and where data goes (default ``data/<experiment_id>.sqlite``).

        ``db`` is an SQLite file, or ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` for a PostgreSQL database
        (several server machines sharing one database; needs ``pip install 'interactive-gym[postgres]'``).
        """
        if experiment_id is not None:
            self.experiment_id = experiment_id
        if stager is not None:
            self.stager = stager
        if data_dir is not None:
            self.data_dir = Path(data_dir)
        if db is not None:
            # A URL stays a string: Path() would fold its "//" and make it a file name.
            self.db_path = db if is_postgres_url(db) else Path(db)
        return self

    def recruitment(self, require_prolific_pid: bool = False) -> RemoteConfig:
        """How participants arrive from a recruitment platform.

        Args:
            require_prolific_pid: Refuse visitors whose link has no ``PROLIFIC_PID`` parameter: they read
                "Please open this study from Prolific ..." and no participant row is made for them (a link
                opened by hand cannot start the study or use up a place in a condition).
        """
        self.required_id_param = "PROLIFIC_PID" if require_prolific_pid else None
        return self

    def pyodide(self, index_url: str | None = None, packages: Sequence[str] | None = None) -> RemoteConfig:
        """Browser Python: a full Pyodide distribution URL (for numpy-based envs) and packages to load.

        By default the server hosts Pyodide itself from the npm package; it has no package wheels, so
        pure-Python environments work offline and numpy-based ones need ``index_url``.
        """
        if index_url is not None:
            self.pyodide_index_url = index_url
        if packages is not None:
            self.pyodide_packages = list(packages)
        return self

    def webrtc(self, turn_username: str | None = None, turn_credential: str | None = None,
               force_relay: bool = False, *, turn_urls: Sequence[str] | None = None,
               stun_urls: Sequence[str] | None = None, turn_secret: str | None = None,
               credential_ttl_s: int = 3600) -> RemoteConfig:
        """Peer-to-peer connection settings: STUN/TURN servers and credentials.

        Args:
            turn_username: Static TURN username (falls back to env ``TURN_USERNAME``).
            turn_credential: Static TURN password (falls back to env ``TURN_CREDENTIAL``).
            force_relay: Relay every connection through TURN (for testing the relay path).
            turn_urls: TURN server URLs (env ``TURN_URLS``, comma-separated); default: Open Relay.
            stun_urls: STUN server URLs (env ``STUN_URLS``).
            turn_secret: Shared secret of a coturn ``use-auth-secret`` server (env ``TURN_SECRET``): the server
                then mints short-lived per-participant credentials and never sends the secret.
            credential_ttl_s: Lifetime of minted credentials.
        """
        self.webrtc_args = dict(turn_username=turn_username, turn_credential=turn_credential,
                                force_relay=force_relay, turn_urls=turn_urls, stun_urls=stun_urls,
                                turn_secret=turn_secret, credential_ttl_s=credential_ttl_s)
        return self

    def screening(self, entry: Sequence[Any] = (), in_game: Sequence[Any] = ()) -> RemoteConfig:
        """Who may take part, and who is excluded while playing (``interactive_gym.screening``).

        Args:
            entry: Rules judged before consent, on facts the page reports and round trips the server measures:
                ``AllowedBrowsers``, ``NoMobileDevices``, ``MinWindowSize``, ``RequiredFeatures``, ``MaxPing``,
                ``TurnPretest`` and your own functions ``rule(facts) -> bool | str`` (or ``CustomRule``).
            in_game: Rules watched in every game scene (``HiddenTab``, ``Idle``, ``SustainedRtt``) unless the
                scene has its own ``GymScene(exclusion=[...])``.

        An excluded participant goes to the end page with status ``excluded`` and the EndScene's
        ``screen_out_completion_code``; the rule and its figures are stored in an ``excluded`` events row.
        """
        self.screening_args = {"entry": entry, "in_game": in_game}
        return self

    def database_path(self) -> Path | str:
        """The SQLite file of this experiment, or the ``postgresql://`` URL given as ``db``."""
        path = self.db_path or self.data_dir / f"{self.experiment_id}.sqlite"
        if isinstance(path, str):
            return path
        return path if path.is_absolute() else self.base_dir / path

    def resolve_webrtc(self, environ: Mapping[str, str] | None = None) -> Any:
        """Builds the WebRTC/TURN settings from :meth:`webrtc` arguments and the environment."""
        from interactive_gym.configurations.webrtc import WebRTCSettings

        self.webrtc_settings = WebRTCSettings.from_config(**self.webrtc_args,
                                                          environ=os.environ if environ is None else environ)
        return self.webrtc_settings

    def validate(self, environ: Mapping[str, str] | None = None) -> None:
        """Checks everything that can be checked before participants arrive.

        Raises:
            ConfigError: listing every problem with what to change.
        """
        problems: list[str] = []
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            problems.append(f"hosting(port=...) must be a port number 0-65535, got {self.port!r}")
        if not _EXPERIMENT_ID.fullmatch(str(self.experiment_id)):
            problems.append("experiment(experiment_id=...) must be 1-64 letters, digits, '_' or '-'")
        if self.stager is None:
            problems.append("experiment(stager=...) is missing: pass a Stager with your scenes")
        else:
            try:
                self.stager.validate()
            except SceneConfigError as exc:
                problems.append(str(exc))
            else:
                for scene in self.stager.all_scenes():
                    check = getattr(scene, "check", None)
                    try:
                        if check is not None:
                            check()
                    except SceneConfigError as exc:
                        problems.append(str(exc))
                    target = getattr(scene, "timeout_scene_id", None)
                    if target is not None and self.stager.scene(target) is None:
                        problems.append(f"scene {scene.scene_id!r}: timeout_scene_id {target!r} is not a scene "
                                        "of this experiment")
                if not problems:  # needs every scene's checked env (its number of humans)
                    problems.extend(check_keep_groups(self.stager))
        try:
            self.resolve_webrtc(environ)
        except ValueError as exc:
            problems.append(str(exc))
        problems.extend(self._check_screening())
        if problems:
            raise ConfigError(problems)

    def _check_screening(self) -> list[str]:
        """Checks ``screening(...)`` (the rules themselves and what they need of the experiment)."""
        from interactive_gym.screening.rules import TurnPretest, entry_rules, in_game_rules

        if not self.screening_args:
            return []
        try:
            self.entry_screening = entry_rules(self.screening_args.get("entry", ()))
            self.in_game_screening = in_game_rules(self.screening_args.get("in_game", ()))
        except SceneConfigError as exc:
            return [str(exc)]
        modes = {getattr(s, "mode", None) for s in self.stager.all_scenes()} if self.stager is not None else set()
        if any(isinstance(r, TurnPretest) for r in self.entry_screening):
            if "p2p" not in modes:
                return ["screening(entry=[TurnPretest()]): the experiment has no p2p scene, so there is no TURN "
                        "connection to test; remove TurnPretest"]
            settings = self.webrtc_settings
            if settings is not None and not settings.has_turn:
                return ["screening(entry=[TurnPretest()]) needs a TURN server: set webrtc(turn_urls=..., "
                        "turn_username=..., turn_credential=...) or turn_secret=..."]
        return []
