"""`--where`: a small, safe language for filters on the fields stored with each text.

    where = parse("source = 'imdb' AND year >= 2000", {"source": "text", "year": "integer"})
    sql, params = where.sql(column)          # '("f_source" = ? AND "f_year" >= ?)', ["imdb", 2000]
    where.milvus()                           # the same as a Milvus expression

    expression := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | "(" expression ")" | test
    test       := FIELD ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") VALUE
                | FIELD ["NOT"] "IN" "(" VALUE ("," VALUE)* ")"
                | FIELD ["NOT"] "LIKE" STRING     (% any run of characters, _ one; case-sensitive)
                | FIELD "IS" ["NOT"] "NULL"
    VALUE      := 'text' (a quote doubled inside) | "text" | a number | TRUE | FALSE

Keywords are case-insensitive; field names are the ones the store keeps. The expression is
parsed into a tree and compiled: values travel as SQL parameters (or as JSON-quoted Milvus
literals), never pasted into a statement. A mistake is a BadQuery naming the position.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import BadQuery

_TOKEN = re.compile(r"""\s*(?:(?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")|(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
                        |(?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))""", re.VERBOSE)
KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "IS", "NULL", "TRUE", "FALSE"}
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Test:
    field: str
    op: str       # = != < <= > >= IN LIKE NULL
    value: object  # a value, a list of values (IN), None (NULL)
    negated: bool = False


@dataclass
class Node:
    op: str       # AND, OR, NOT
    parts: list


class Where:
    """A parsed filter: its tree, and compilers to SQL and to Milvus's expressions."""

    def __init__(self, tree, text: str):
        self.tree, self.text = tree, text

    def fields(self) -> set[str]:
        def walk(node):
            return {node.field} if isinstance(node, Test) else set().union(*(walk(p) for p in node.parts))
        return walk(self.tree)

    def sql(self, column=lambda name: f'"f_{name}"') -> tuple[str, list]:
        """(a WHERE clause over the fields' columns, its parameters)."""
        params: list = []

        def walk(node) -> str:
            if isinstance(node, Node):
                if node.op == "NOT":
                    return f"(NOT {walk(node.parts[0])})"
                return "(" + f" {node.op} ".join(walk(p) for p in node.parts) + ")"
            name = column(node.field)
            if node.op == "NULL":
                return f"({name} IS {'NOT ' if node.negated else ''}NULL)"
            if node.op == "IN":
                params.extend(node.value)
                return f"({name} {'NOT ' if node.negated else ''}IN ({', '.join('?' * len(node.value))}))"
            if node.op == "LIKE":  # as GLOB: case-sensitive, as Milvus's like is
                params.append(like_to_glob(node.value))
                return f"({name} {'NOT ' if node.negated else ''}GLOB ?)"  # NULL stays unknown
            params.append(node.value)
            return f"({name} {node.op} ?)"
        return walk(self.tree), params

    def milvus(self, column=lambda name: name, missing=lambda name: f"{name}_missing") -> str:
        """The filter as a Milvus boolean expression. `column` names a field's scalar field in
        the collection, `missing` the boolean field saying the text had no value for it (any
        Milvus server takes these; nullable fields are recent). SQL's three-valued logic is
        kept: a row passes when the filter is true, not merely not false, so a test on a
        missing value passes neither it nor its NOT."""
        def literal(value):
            return json.dumps(value) if isinstance(value, str) else ("true" if value is True else "false"
                                                                    if value is False else repr(value))

        def test(node) -> str:  # the comparison itself, for a row that has the field
            name = column(node.field)
            if node.op == "IN":
                return f"{name} in [{', '.join(literal(v) for v in node.value)}]"
            if node.op == "LIKE":
                return f"{name} like {literal(node.value)}"
            op = {"=": "==", "<>": "!="}.get(node.op, node.op)
            return f"{name} {op} {literal(node.value)}"

        def walk(node, truth: bool) -> str:  # the rows where `node` is true (or false)
            if isinstance(node, Node):
                if node.op == "NOT":
                    return walk(node.parts[0], not truth)
                joiner = " and " if (node.op == "AND") == truth else " or "
                return "(" + joiner.join(walk(p, truth) for p in node.parts) + ")"
            absent = f"{missing(node.field)} == true"
            if node.op == "NULL":  # never unknown itself
                is_null = truth != node.negated
                return f"({absent})" if is_null else f"({missing(node.field)} == false)"
            holds = truth != node.negated  # x NOT IN (...) is true where x IN (...) is false
            return f"({missing(node.field)} == false and {'' if holds else 'not '}({test(node)}))"
        return walk(self.tree, True)


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern (% any run, _ one character, \\ escaping either) as a SQLite GLOB pattern."""
    out, escaped = [], False
    for char in pattern:
        if escaped or char not in "%_\\":
            out.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append("*" if char == "%" else "?")
    return "".join(out)


def parse(text: str, fields: dict[str, str]) -> Where:
    """The filter `text` over `fields` ({name: "text" | "integer" | "real"}); BadQuery with the
    position of a mistake, or naming an unknown field."""
    tokens = _tokens(text)
    parser = _Parser(tokens, text, fields)
    tree = parser.expression()
    if parser.at < len(tokens):
        parser.fail("expected AND, OR or the end")
    return Where(tree, text)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, position from 1) of each token."""
    tokens, at = [], 0
    while at < len(text):
        if not text[at:].strip():
            break
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            start = len(text) - len(text[at:].lstrip()) + 1
            raise BadQuery(f"--where: unexpected {text[start - 1]!r} at position {start}: {text}")
        kind = match.lastgroup
        value = match.group(kind)
        position = match.start(kind) + 1
        if kind == "word" and value.upper() in KEYWORDS:
            kind, value = "keyword", value.upper()
        tokens.append((kind, value, position))
        at = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens, text, fields):
        self.tokens, self.text, self.fields, self.at = tokens, text, fields, 0

    def fail(self, what: str):
        position = self.tokens[self.at][2] if self.at < len(self.tokens) else len(self.text) + 1
        found = f"{self.tokens[self.at][1]!r}" if self.at < len(self.tokens) else "the end"
        raise BadQuery(f"--where: {what} at position {position} (found {found}): {self.text}")

    def peek(self, kind=None, value=None):
        if self.at >= len(self.tokens):
            return None
        token = self.tokens[self.at]
        if (kind is None or token[0] == kind) and (value is None or token[1] == value):
            return token
        return None

    def take(self, kind=None, value=None, what=None):
        token = self.peek(kind, value)
        if token is None:
            self.fail(what or f"expected {value or kind}")
        self.at += 1
        return token

    def expression(self):
        return self.joined("OR", self.conjunction)

    def conjunction(self):
        return self.joined("AND", self.negation)

    def joined(self, keyword: str, operand):
        """operand (keyword operand)*: the operand alone, or one node joining them all."""
        parts = [operand()]
        while self.peek("keyword", keyword):
            self.at += 1
            parts.append(operand())
        return parts[0] if len(parts) == 1 else Node(keyword, parts)

    def negation(self):
        if self.peek("keyword", "NOT"):
            self.at += 1
            return Node("NOT", [self.negation()])
        if self.peek("op", "("):
            self.at += 1
            inner = self.expression()
            self.take("op", ")", "expected ')'")
            return inner
        return self.test()

    def test(self) -> Test:
        token = self.take("word", what="expected a field name")
        name = token[1]
        if name not in self.fields:
            known = ", ".join(sorted(self.fields)) or "none: encode with --fields"
            raise BadQuery(f"--where: unknown field {name!r} at position {token[2]} (fields: {known})")
        kind = self.fields[name]
        negated = bool(self.peek("keyword", "NOT"))
        if negated:
            self.at += 1
        if self.peek("keyword", "IN"):
            self.at += 1
            self.take("op", "(", "expected '(' after IN")
            values = [self.value(kind)]
            while self.peek("op", ","):
                self.at += 1
                values.append(self.value(kind))
            self.take("op", ")", "expected ',' or ')'")
            return Test(name, "IN", values, negated)
        if self.peek("keyword", "LIKE"):
            self.at += 1
            pattern = self.value("text")
            if not isinstance(pattern, str):
                self.at -= 1
                self.fail("expected a quoted pattern after LIKE")
            return Test(name, "LIKE", pattern, negated)
        if negated:
            self.fail("expected IN or LIKE after NOT")
        if self.peek("keyword", "IS"):
            self.at += 1
            not_null = bool(self.peek("keyword", "NOT"))
            if not_null:
                self.at += 1
            self.take("keyword", "NULL", "expected NULL")
            return Test(name, "NULL", None, not_null)
        op = self.take("op", what="expected a comparison (=, !=, <, <=, >, >=, IN, LIKE, IS NULL)")[1]
        if op in ("(", ")", ","):
            self.at -= 1
            self.fail("expected a comparison (=, !=, <, <=, >, >=, IN, LIKE, IS NULL)")
        return Test(name, "!=" if op == "<>" else op, self.value(kind))

    def value(self, kind: str):
        token = self.peek()
        if token is None or token[0] not in ("string", "number") and token[1] not in ("TRUE", "FALSE"):
            self.fail("expected a value (a quoted text or a number)")
        self.at += 1
        if token[0] == "string":
            value = token[1][1:-1].replace(token[1][0] * 2, token[1][0])
            if kind != "text":
                self.at -= 1
                self.fail(f"expected a number: this field holds {kind} values")
            return value
        if token[1] in ("TRUE", "FALSE"):
            return 1 if token[1] == "TRUE" else 0
        number = float(token[1]) if any(c in token[1] for c in ".eE") else int(token[1])
        if kind == "text":
            self.at -= 1
            self.fail("expected a quoted text: this field holds text")
        return number
