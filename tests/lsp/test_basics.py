"""The server starts, advertises its surface and answers code actions (real server process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from tests.lsp.conftest import SERVER, Start, raw_request

COMMANDS = {"channelcoder.run", "channelcoder.ask", "channelcoder.fix", "channelcoder.cancel",
            "channelcoder.jobs", "channelcoder.applyProposal", "channelcoder.rejectProposal",
            "channelcoder.buildImage", "channelcoder.doctor", "channelcoder.sessions",
            "channelcoder.resetSession"}


@pytest.mark.parametrize("caps", ["visual-studio-code", "neovim@0.7.0"])
async def test_initialize_advertises_commands_and_code_action_kinds(
        lsp: Start, workspace: Path, caps: str) -> None:
    session = await lsp(workspace, caps=caps)
    capabilities = session.init.capabilities
    assert capabilities.execute_command_provider is not None
    assert set(capabilities.execute_command_provider.commands) == COMMANDS
    provider = capabilities.code_action_provider
    assert isinstance(provider, types.CodeActionOptions)
    assert set(provider.code_action_kinds or []) == {"quickfix", "refactor.rewrite", "source"}
    assert provider.resolve_provider is True
    sync = capabilities.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.change == types.TextDocumentSyncKind.Incremental and sync.open_close


@pytest.mark.parametrize("caps", ["visual-studio-code", "neovim@0.7.0"])
async def test_code_actions_on_a_selection_and_on_a_diagnostic(
        lsp: Start, workspace: Path, caps: str) -> None:
    prompts = workspace / ".channelcoder" / "prompts"
    prompts.mkdir(parents=True)
    (prompts / "docs.md").write_text("---\ntitle: Add docstrings\n---\nAdd docstrings.\n")
    (prompts / "untitled.md").write_text("No front matter, no action.\n")
    session = await lsp(workspace, caps=caps)
    uri = session.editor.open(workspace / "app.py")
    diagnostic = {"range": {"start": {"line": 0, "character": 0},
                            "end": {"line": 0, "character": 8}},
                  "message": "undefined name 'GREETING'\nsecond line", "severity": 1,
                  "source": "pyflakes"}
    params = {"textDocument": {"uri": uri},
              "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 8}},
              "context": {"diagnostics": [diagnostic]}}
    actions = await _actions_when_prompts_loaded(session.client, params)
    titles = [a["title"] for a in actions]
    assert titles == ["Fix with Claude: undefined name 'GREETING'", "Explain with Claude",
                      "Improve with Claude", "Write tests with Claude", "Claude: Add docstrings"]
    fix = actions[0]
    assert fix["kind"] == "quickfix" and "edit" not in fix
    assert fix["command"]["command"] == "channelcoder.fix"
    assert fix["command"]["arguments"] == [{"uri": uri, "diagnostic": diagnostic}]
    assert actions[1]["command"]["command"] == "channelcoder.ask"
    assert actions[4]["command"]["arguments"][0]["promptFile"] == ".channelcoder/prompts/docs.md"
    only = await raw_request(session.client, "textDocument/codeAction",
                             {**params, "context": {"diagnostics": [diagnostic],
                                                    "only": ["quickfix"]}})
    assert [a["kind"] for a in only] == ["quickfix"]
    empty = await raw_request(session.client, "textDocument/codeAction",
                              {**params, "range": params["range"] | {"end": {"line": 0,
                                                                              "character": 0}},
                               "context": {"diagnostics": []}})
    assert [a["title"] for a in empty] == ["Claude: Add docstrings"]
    resolved = await raw_request(session.client, "codeAction/resolve", actions[1])
    assert resolved["command"] == actions[1]["command"]


async def _actions_when_prompts_loaded(client, params):  # type: ignore[no-untyped-def]
    import anyio

    for _ in range(100):
        actions = await raw_request(client, "textDocument/codeAction", params)
        if any(a["title"].startswith("Claude:") for a in actions):
            return actions
        await anyio.sleep(0.05)
    raise AssertionError("prompt files never loaded")


async def test_prompt_files_are_reloaded_when_they_change(lsp: Start, workspace: Path) -> None:
    session = await lsp(workspace, server=[*SERVER, "--stdio"])
    uri = session.editor.open(workspace / "app.py")
    params = {"textDocument": {"uri": uri},
              "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
              "context": {"diagnostics": []}}
    assert await raw_request(session.client, "textDocument/codeAction", params) == []
    prompts = workspace / ".channelcoder" / "prompts"
    prompts.mkdir(parents=True)
    (prompts / "review.md").write_text("---\ntitle: Review this file\n---\nReview {file}.\n")
    session.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=(prompts / "review.md").as_uri(), type=types.FileChangeType.Created)]))
    actions = await _actions_when_prompts_loaded(session.client, params)
    assert [a["title"] for a in actions] == ["Claude: Review this file"]
