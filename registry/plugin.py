"""Registry plugin: follows runs through lifecycle hooks and adds `still sql` / `still runs`."""
