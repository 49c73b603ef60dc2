"""State shared by server processes on one or several machines (``interactive-gym run --workers N``), in Redis.

``room_records`` holds the stored shapes and the decisions on them (pure); ``redis_rooms`` the Redis-backed
waiting room (a thin transaction shell around them). Importing ``redis_rooms`` needs the ``redis`` extra.
"""
