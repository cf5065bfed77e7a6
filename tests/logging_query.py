"""The part of Cloud Logging's query language the deployment's filters use, evaluated
against log entries, with the precedence Google documents ("Logging query language":
NOT binds tightest, then OR, then AND, so `a AND b OR c` is `a AND (b OR c)`).

Supported: comparisons `=`, `!=`, `:` (has, a substring for strings), `>=`, `>`,
`<=`, `<` (severities by their order, other values as text); field paths with quoted
segments (`jsonPayload."@type"`); NOT and a leading `-`; AND, OR and juxtaposition
(an implicit AND); parentheses. `x != v` is read as NOT `x = v`, which an entry
without the field also matches. Anything else is refused, so that a filter this
does not understand fails its test rather than passing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"]
TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>!=|>=|<=|[=:<>()])|(?P<word>[^\s"=:<>!()]+)|(?P<minus>-))'
)
Entry = dict[str, Any]
Predicate = Callable[[Entry], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read the filter at {text[position:]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1]) if token.startswith('"') else token


def _lookup(entry: Entry, path: list[str]) -> Any:
    value: Any = entry
    for segment in path:
        if not isinstance(value, dict) or segment not in value:
            return None
        value = value[segment]
    return value


def _compare(path: list[str], operator: str, wanted: str) -> Predicate:
    def severity_rank(value: str) -> int:
        return SEVERITIES.index(value.upper()) if value.upper() in SEVERITIES else -1

    def test(entry: Entry) -> bool:
        value = _lookup(entry, path)
        if operator == "!=":
            return not test_equal(value)
        if value is None:
            return False
        if operator == "=":
            return test_equal(value)
        if operator == ":":
            return wanted.lower() in str(value).lower()
        if path == ["severity"]:
            left, right = severity_rank(str(value)), severity_rank(wanted)
        else:
            left, right = str(value), wanted  # type: ignore[assignment]
        return {">=": left >= right, ">": left > right, "<=": left <= right, "<": left < right}[operator]

    def test_equal(value: Any) -> bool:
        return value is not None and str(value) == wanted

    return test


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    position: int = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def conjunction(self) -> Predicate:
        """The loosest: AND, written or implied by juxtaposition."""
        terms = [self.disjunction()]
        while (token := self.peek()) is not None and token != ("op", ")"):
            if token == ("word", "AND"):
                self.take()
            terms.append(self.disjunction())
        return lambda entry: all(term(entry) for term in terms)

    def disjunction(self) -> Predicate:
        """OR binds tighter than AND."""
        terms = [self.negation()]
        while self.peek() == ("word", "OR"):
            self.take()
            terms.append(self.negation())
        return lambda entry: any(term(entry) for term in terms)

    def negation(self) -> Predicate:
        if self.peek() in (("word", "NOT"), ("minus", "-")):
            self.take()
            inner = self.negation()
            return lambda entry: not inner(entry)
        return self.primary()

    def primary(self) -> Predicate:
        if self.peek() == ("op", "("):
            self.take()
            inner = self.conjunction()
            if self.take() != ("op", ")"):
                raise ValueError("a parenthesis is not closed")
            return inner
        kind, field = self.take()
        if kind != "word":
            raise ValueError(f"expected a field, not {field!r}")
        path = field.split(".")
        if path[-1] == "" and (token := self.peek()) is not None and token[0] == "string":
            path[-1] = _unquote(self.take()[1])  # jsonPayload."@type": a quoted last segment
        kind, operator = self.take()
        if kind != "op" or operator in "()":
            raise ValueError(f"expected a comparison after {'.'.join(path)}")
        return _compare(path, operator, _unquote(self.take()[1]))


def matches(query: str, entry: Entry) -> bool:
    """Whether Cloud Logging would count `entry` under `query`."""
    parser = _Parser(_tokens(query))
    predicate = parser.conjunction()
    if parser.peek() is not None:
        raise ValueError(f"unexpected {parser.peek()[1]!r} in the filter")
    return predicate(entry)
