"""The pygame comparison app. It talks to the preference store only; the core never imports it."""
