"""Interactive Gym."""
