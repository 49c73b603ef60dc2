"""What a participant is told when their game ends, by reason (one wording for every mode)."""

from __future__ import annotations

END_MESSAGES: dict[str, str] = {
    "complete": "The game is over. Thank you!",
    "partner_left": "Your partner left the game, so it has ended. Everything you played has been saved.",
    "left": "You left the game, so it has ended for you. Everything you played before has been saved.",
    "error": "The game stopped because of an error on our side. Everything played so far has been saved.",
    "desync": "The game stopped because the players' games disagreed. Everything played has been saved.",
    "ended_by_researcher": "The researcher ended this game. Everything you played has been saved.",
    # The server process hosting a server-mode game stopped (a worker crashed, a restart) while it ran.
    "server_lost": "The game stopped because of a problem on our server. Everything played until then has "
                   "been saved.",
    # p2p: the partner played the game to its end while this player's new page (a reload) was getting it back.
    "ended_while_away": "The game ended while your page was reloading. Everything you played has been saved.",
}

# How a p2p page may say its game ended (``p2p_game_end``); the page shows END_MESSAGES[reason] (sent with the
# game's config, so the page and a reload show the same words).
P2P_END_REASONS: tuple[str, ...] = ("complete", "partner_left", "error", "desync", "ended_while_away")


def game_over_record(reason: str) -> dict[str, str]:
    """``{"reason", "message"}`` kept with the participant until they continue (shown again on reload)."""
    return {"reason": reason, "message": END_MESSAGES.get(reason, END_MESSAGES["complete"])}
