"""The scene base class and the static scenes: consent, information/survey pages, and the end page."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from interactive_gym.scenes.form_inputs import AnswerError, FormInput, clean_answers, input_to_client

_SCENE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SceneConfigError(ValueError):
    """A scene the experiment cannot use; the message says what to change."""


class Scene:
    """One step of an experiment a participant goes through.

    Args:
        scene_id: Unique id within the experiment (letters, digits, ``_``, ``-``); it names the scene in the data.
        title: Heading shown at the top of the page.
        body_html: HTML the researcher wrote (trusted: it comes from the experiment file, never a participant).
    """

    kind = "scene"

    def __init__(self, scene_id: str, title: str = "", body_html: str = "") -> None:
        if not isinstance(scene_id, str) or not _SCENE_ID.fullmatch(scene_id):
            raise SceneConfigError(f"scene_id {scene_id!r}: use 1-64 letters, digits, '_' or '-'")
        self.scene_id = scene_id
        self.title = title
        self.body_html = body_html

    def to_client(self) -> dict[str, Any]:
        """What the page needs to show this scene."""
        return {"kind": self.kind, "scene_id": self.scene_id, "title": self.title, "body_html": self.body_html}

    def clean_answers(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        """Validates what the page submits when the participant continues; scenes without inputs take none."""
        return clean_answers((), answers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scene_id!r})"


class StaticScene(Scene):
    """A page of text with optional form inputs (a survey, instructions, a questionnaire).

    Args:
        inputs: Form inputs (``TextInput``, ``MultipleChoice``, ``Likert``); answers are stored per participant.
        button_label: Text of the continue button.
    """

    kind = "static"

    def __init__(self, scene_id: str, title: str = "", body_html: str = "", inputs: Sequence[FormInput] = (),
                 button_label: str = "Continue") -> None:
        super().__init__(scene_id, title, body_html)
        names = [i.name for i in inputs]
        if len(names) != len(set(names)):
            raise SceneConfigError(f"scene {scene_id!r}: two inputs share a name")
        self.inputs = tuple(inputs)
        self.button_label = button_label

    def to_client(self) -> dict[str, Any]:
        data = super().to_client()
        data.update(inputs=[input_to_client(i) for i in self.inputs], button_label=self.button_label)
        return data

    def clean_answers(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        return clean_answers(self.inputs, answers)


class StartScene(StaticScene):
    """The consent page: the participant cannot continue without ticking the agreement box."""

    kind = "start"

    def __init__(self, scene_id: str = "consent", title: str = "Consent", body_html: str = "",
                 consent_label: str = "I have read the information above and agree to take part.",
                 inputs: Sequence[FormInput] = (), button_label: str = "Start") -> None:
        super().__init__(scene_id, title, body_html, inputs, button_label)
        self.consent_label = consent_label

    def to_client(self) -> dict[str, Any]:
        data = super().to_client()
        data["consent_label"] = self.consent_label
        return data

    def clean_answers(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        answers = dict(answers)
        if answers.pop("consent", None) is not True:
            raise AnswerError("consent: the participant must agree to continue")
        cleaned = super().clean_answers(answers)
        cleaned["consent"] = True
        return cleaned


ERROR_BODY_HTML = ("<p>The game could not continue because of an error on our side. Everything you did so far has "
                   "been saved. Please contact the researcher through the study platform.</p>")
SCREEN_OUT_BODY_HTML = ("<p>This study cannot continue for you. Thank you for your interest and your time.</p>")


class EndScene(Scene):
    """The last page: thanks, the completion code, and optionally a redirect (e.g. back to Prolific).

    Args:
        completion_code: The code to show/record; ``None`` shows none.
        redirect_url: Where to send the participant; ``{completion_code}`` and ``{participant_id}`` are filled in,
            e.g. ``"https://app.prolific.com/submissions/complete?cc={completion_code}"``.
        redirect_delay_s: Seconds to show the page before redirecting.
        error_completion_code: The code for participants whose game failed (status ``errored``); ``None``
            shows none and asks them to contact the researcher. Never the normal code, so errored
            participants can be told apart on the recruitment platform.
        error_body_html: What errored participants read instead of ``body_html``.
        screen_out_completion_code: The code for participants a screening rule excluded (status ``excluded``,
            see ``RemoteConfig.screening``); ``None`` shows none and never redirects them. Never the normal or
            the error code, so they can be told apart on the recruitment platform.
        screen_out_body_html: What excluded participants read instead of ``body_html`` (the rule's own reason
            is shown above it).
    """

    kind = "end"

    def __init__(self, scene_id: str = "end", title: str = "Thank you!", body_html: str = "",
                 completion_code: str | None = None, redirect_url: str | None = None,
                 redirect_delay_s: float = 5.0, error_completion_code: str | None = None,
                 error_body_html: str = ERROR_BODY_HTML, screen_out_completion_code: str | None = None,
                 screen_out_body_html: str = SCREEN_OUT_BODY_HTML) -> None:
        super().__init__(scene_id, title, body_html)
        codes = (("completion_code", completion_code), ("error_completion_code", error_completion_code),
                 ("screen_out_completion_code", screen_out_completion_code))
        for name, code in codes:
            if code is not None and not _CODE.fullmatch(code):
                raise SceneConfigError(f"EndScene {scene_id!r}: {name} must be 1-64 letters/digits/_/-")
        for i, (name, code) in enumerate(codes):
            for other, other_code in codes[:i]:
                if code is not None and code == other_code:
                    raise SceneConfigError(f"EndScene {scene_id!r}: {name} must differ from {other}")
        if redirect_url is not None and not redirect_url.startswith(("https://", "http://", "/")):
            raise SceneConfigError(f"EndScene {scene_id!r}: redirect_url must be an http(s) URL or a path")
        if redirect_url is not None:
            try:
                redirect_url.format(completion_code="", participant_id="")
            except (KeyError, IndexError, ValueError) as exc:
                raise SceneConfigError(
                    f"EndScene {scene_id!r}: redirect_url may only use {{completion_code}} and {{participant_id}} "
                    f"placeholders ({type(exc).__name__}: {exc})"
                ) from None
        if redirect_delay_s < 0:
            raise SceneConfigError(f"EndScene {scene_id!r}: redirect_delay_s cannot be negative")
        self.completion_code = completion_code
        self.redirect_url = redirect_url
        self.redirect_delay_s = redirect_delay_s
        self.error_completion_code = error_completion_code
        self.error_body_html = error_body_html
        self.screen_out_completion_code = screen_out_completion_code
        self.screen_out_body_html = screen_out_body_html

    def code_for(self, status: str) -> str | None:
        """The completion code of a participant with this status."""
        if status == "excluded":
            return self.screen_out_completion_code
        return self.error_completion_code if status == "errored" else self.completion_code

    def client_view(self, participant_id: str, status: str = "completed") -> dict[str, Any]:
        """The page data for one participant (the redirect URL is filled in with their values).

        An errored (or excluded) participant without their own code gets no code and no redirect.
        """
        data = self.to_client()
        code = self.code_for(status)
        data["completion_code"] = code
        if status == "errored":
            data["body_html"] = self.error_body_html
            data["status"] = status
        if status == "excluded":
            data["body_html"] = self.screen_out_body_html
            data["status"] = status
        if self.redirect_url and (code is not None or status not in ("errored", "excluded")):
            data["redirect_url"] = self.redirect_url.format(completion_code=code or "", participant_id=participant_id)
            data["redirect_delay_s"] = self.redirect_delay_s
        return data
