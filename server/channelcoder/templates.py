"""`{var}` interpolation for prompts (ChannelCoder's template language, made strict).

    {name}                    the value of name ('' for a declared optional input left out)
    {user.name}               a nested value
    {urgent ? "NOW" : "later"}  a condition; branches are quoted text, numbers, or names
    {level == "high" ? …}     == and != (=== and !== too) compare loosely, as text
    {!draft ? …}              negation
    \\{name}                   a literal {name}

Anything between braces that is not such an expression (JSON, code such as `{ return 1; }`,
`${HOME}`) is left exactly as written. A `{name}` with no value and no declaration is an error
naming it, so a typo never silently becomes an empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PromptError

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<num>-?\d+(?:\.\d+)?(?![\w.]))
    | (?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<op>===|!==|==|!=|\?|:|!)
    )""", re.VERBOSE)
_FALSE_TEXT = {"", "false", "0", "no"}
_MISSING = object()


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


class _NotAnExpression(Exception):
    pass


def interpolate(text: str, data: Mapping[str, Any], *, declared: set[str] | None = None,
                where: str = "the prompt") -> str:
    """Replace every `{expression}` in `text` using `data`."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] == "{":
            out.append("{")
            i += 2
            continue
        if char == "$" and i + 1 < n and text[i + 1] == "{":
            end = text.find("}", i + 2)
            stop = n if end < 0 else end + 1
            out.append(text[i:stop])
            i = stop
            continue
        if char != "{":
            out.append(char)
            i += 1
            continue
        end = _closing_brace(text, i + 1)
        if end < 0:
            out.append(char)
            i += 1
            continue
        inner = text[i + 1:end]
        try:
            tokens = _tokenize(inner)
            out.append(_Evaluator(tokens, data, declared or set(), where, inner).run())
        except _NotAnExpression:
            out.append(text[i:end + 1])
        i = end + 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """The index of the `}` closing a brace opened before `start`, skipping quoted text."""
    quote = ""
    i = start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{" or char == "\n":
            return -1
        elif char == "}":
            return i
        i += 1
    return -1


def _tokenize(inner: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    inner = inner.rstrip()
    if not inner.strip():
        raise _NotAnExpression
    while pos < len(inner):
        match = _TOKEN.match(inner, pos)
        if not match or match.end() == pos:
            raise _NotAnExpression
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Evaluator:
    def __init__(self, tokens: list[_Tok], data: Mapping[str, Any], declared: set[str],
                 where: str, source: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.data = data
        self.declared = declared
        self.where = where
        self.source = source.strip()

    def run(self) -> str:
        if any(t.text == "?" for t in self.tokens):
            condition = self._condition()
            self._expect("?")
            yes = self._operand()
            self._expect(":")
            no = self._operand()
            self._end()
            chosen = yes if condition else no
            return format_value(self._branch(chosen))
        token = self._next()
        if token.kind != "path":
            raise _NotAnExpression
        self._end()
        value = lookup(self.data, token.text)
        if value is _MISSING:
            if token.text.split(".")[0] in self.declared:
                return ""
            raise PromptError(
                f"{self.where} uses {{{self.source}}} but no value was given for it",
                hint=f"pass -d {token.text}=VALUE (data={{'{token.text}': ...}}), or write "
                     f"\\{{{self.source}}} for a literal brace")
        return format_value(value)

    def _condition(self) -> bool:
        negate = False
        while self._peek() == "!":
            self.pos += 1
            negate = not negate
        left = self._operand()
        if self._peek() in ("==", "!=", "===", "!=="):
            op = self._next().text
            right = self._operand()
            equal = _loose_equal(self._value(left), self._value(right))
            result = equal if op in ("==", "===") else not equal
        else:
            result = truthy(self._value(left))
        return result != negate

    def _operand(self) -> _Tok:
        token = self._next()
        if token.kind not in ("str", "num", "path"):
            raise _NotAnExpression
        return token

    def _value(self, token: _Tok) -> Any:
        if token.kind == "str":
            return _unquote(token.text)
        if token.kind == "num":
            return float(token.text) if "." in token.text else int(token.text)
        if token.text in ("true", "false"):
            return token.text == "true"
        if token.text in ("null", "undefined", "None"):
            return None
        value = lookup(self.data, token.text)
        return None if value is _MISSING else value

    def _branch(self, token: _Tok) -> Any:
        """A branch that names no value is a bare word: `{x ? yes : no}` gives 'yes'."""
        if token.kind == "path" and lookup(self.data, token.text) is _MISSING:
            return token.text
        return self._value(token)

    def _peek(self) -> str | None:
        return self.tokens[self.pos].text if self.pos < len(self.tokens) else None

    def _next(self) -> _Tok:
        if self.pos >= len(self.tokens):
            raise _NotAnExpression
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _expect(self, text: str) -> None:
        if self._next().text != text:
            raise _NotAnExpression

    def _end(self) -> None:
        if self.pos != len(self.tokens):
            raise _NotAnExpression


def lookup(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list | tuple) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def truthy(value: Any) -> bool:
    """Python truth, except that text such as 'false', '0', 'no' (from `-d`) is false."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_TEXT
    return bool(value)


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return str(value)


def _loose_equal(left: Any, right: Any) -> bool:
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers) \
            and not isinstance(left, bool) and not isinstance(right, bool):
        return float(left) == float(right)
    return format_value(left) == format_value(right)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)
