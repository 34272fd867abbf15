"""Sandboxes that outlive one job or start before it: a named session's warm container, its
live claude process, the language server's standby and a CLI run's head start."""
