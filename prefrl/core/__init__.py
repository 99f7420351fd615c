"""The shared core: data, the preference store, label schedule, pair selection, teachers, reward models."""
