"""Browser-mode runtime: the pure-Python side of a game that runs inside the participant's browser.

Everything in this package is standard-library Python so the same files run in CPython (tests, replay)
and in Pyodide (shipped into the page by :mod:`interactive_gym.server.pyodide_bundle`). The package
``__init__`` deliberately imports nothing: Pyodide imports only the modules it needs.
"""
