"""Fixtures for warm sessions and the standby: the language server's test client is reused."""

from tests.lsp.conftest import lsp, workspace

__all__ = ["lsp", "workspace"]
