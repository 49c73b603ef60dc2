"""Game modes: how a game scene runs (server, browser, p2p); each owns join, presence, reconnect, upload, expiry."""
