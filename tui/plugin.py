"""TUI plugin: adds `still tui`."""
