"""What a participant is told when their game ends, by reason (one wording for every mode)."""

from __future__ import annotations

END_MESSAGES: dict[str, str] = {
    "complete": "The game is over. Thank you!",
    "partner_left": "Your partner left the game, so it has ended. Everything you played has been saved.",
    "left": "You left the game, so it has ended for you. Everything you played before has been saved.",
    "error": "The game stopped because of an error on our side. Everything played so far has been saved.",
    "desync": "The game stopped because the players' games disagreed. Everything played has been saved.",
    "ended_by_researcher": "The researcher ended this game. Everything you played has been saved.",
}


def game_over_record(reason: str) -> dict[str, str]:
    """``{"reason", "message"}`` kept with the participant until they continue (shown again on reload)."""
    return {"reason": reason, "message": END_MESSAGES.get(reason, END_MESSAGES["complete"])}
