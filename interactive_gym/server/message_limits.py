"""The size limits of every message a page sends, all derived from the one upload cap. Constants only.

``upload_validation.MAX_UPLOAD_BYTES`` is the source; the page's pre-send check (``episode_uploader.js``) uses
the same figure (a test compares them).
"""

from __future__ import annotations

from interactive_gym.server.upload_validation import MAX_UPLOAD_BYTES

# Every message limit derives from the one upload cap (upload_validation.MAX_UPLOAD_BYTES):
# - Socket.IO wraps an upload in a few dozen characters (packet type, ack id, event name, brackets);
#   16 KiB covers that with room to spare. Up to this a message is parsed and validated.
FRAMING_MARGIN = 16 * 1024
MAX_MESSAGE_CHARS = MAX_UPLOAD_BYTES + FRAMING_MARGIN
# - Between that and twice the cap a message is answered "too_large" without being parsed (so a page gets a
#   clear, final answer instead of a dropped connection and a reconnect-and-resend loop); beyond it
#   Engine.IO closes the connection. The page measures its upload first, so it never sends either.
MAX_ENGINEIO_BYTES = 2 * MAX_UPLOAD_BYTES
# - A beacon body is the upload itself.
MAX_BEACON_BYTES = MAX_UPLOAD_BYTES + FRAMING_MARGIN
# - Beacon bodies above this are parsed in a worker thread. json.loads holds the GIL, so a thread alone does
#   not free the loop; engineio's parser (the one Socket.IO uses) calls a Python hook per integer, which lets
#   the loop run in between. Measured on a cap-sized upload: the loop stalls ~50 ms instead of ~350 ms. Under
#   this size a parse takes ~1 ms and the thread hop would cost more than it saves.
PARSE_OFF_LOOP_BYTES = 64 * 1024
