"""The researcher's live study dashboard at ``/admin``: access (auth), what it shows (snapshot), the
database reads behind it (reads), its HTTP routes (routes) and the once-a-second push (live)."""
