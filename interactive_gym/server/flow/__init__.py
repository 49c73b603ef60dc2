"""The participant's path through an experiment: identity, sessions, scene moves, one event at a time."""
