"""Several server processes of one experiment (``interactive-gym run --workers N``), on one or more machines.

The front hands each connection to a worker (``front``, ``handoff``); Redis holds what the workers share: who
serves each participant (``placement``; the flow's side in ``handover``, groups gathered from other workers in
``gathering``), the waiting rooms (``room_records`` pure, ``redis_rooms`` the transaction shell) and Socket.IO
messages between workers (``redis_emits`` with ``room_directory``). ``worker_links`` opens a worker's share of
it. Importing the Redis parts needs the ``redis`` extra.
"""
