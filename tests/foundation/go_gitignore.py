"""How ``azd deploy`` decides what goes into a Function App's package, ported from the code azd runs.

azd zips the service folder in ``createDeployableZip`` (Azure/azure-dev, commit
ae35809f496491989273d0edefdeb70f245f399b, ``cli/azd/pkg/project/project_utils.go``), walking it with
``rzip.CreateFromDirectory`` (``cli/azd/pkg/rzip/rzip.go``): entries in name order, a directory the
callback refuses is not entered, a symbolic link is followed. The callback skips ``.azure/``, the
ignore file itself and (Function Apps) ``local.settings.json``, then asks the ignore file's
``GitIgnore.Absolute(path, isDir)``; the file is read with a UTF-8 byte order mark stripped.

The ignore file is parsed and matched by ``github.com/denormal/go-gitignore`` at the version azd pins
in ``cli/azd/go.mod`` (v0.0.0-20180930084346-ae8ad1d07817, commit
ae8ad1d07817b3d3b49cabb21559a3f493a357a3): ``lexer.go`` and ``parser.go`` (tokens and which lines are
patterns), ``pattern.go`` (name, path and ``**`` patterns), ``gitignore.go`` (``Relative``: the last
matching pattern wins, nothing else; no parent-directory rule, the walk provides that). Its
matching calls ``github.com/danwakefield/fnmatch`` (v0.0.0-20160403171240-cbb64ac3d964, commit
cbb64ac3d964b81592e64f957ad53df015803288, ``fnmatch.go``), ported below as well.

The detail that matters (pattern.go, ``name.Match``): a pattern without a ``/`` inside it is a
*name* pattern; anchored (a leading ``/``) it is matched against the whole relative path with
``fnmatch.Match(pattern, path, 0)``, and without ``FNM_PATHNAME`` a ``*`` also matches ``/``.
So ``/*`` matches ``handlers/__init__.py`` too, where git's rules would not.

Each function keeps the Go function's name in its docstring; the port follows the Go code branch by
branch, quirks included (the comments say where the Go code would panic).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

# -- fnmatch.go -------------------------------------------------------------------------------

FNM_NOESCAPE = 1
FNM_PATHNAME = 2
FNM_PERIOD = 4
FNM_LEADING_DIR = 8
FNM_CASEFOLD = 16


def fnmatch(pattern: str, s: str, flags: int) -> bool:
    """``fnmatch.Match``: BSD fnmatch(3), including the bugs the Go port says it keeps."""
    noescape = bool(flags & FNM_NOESCAPE)
    pathname = bool(flags & FNM_PATHNAME)
    period = bool(flags & FNM_PERIOD)
    leadingdir = bool(flags & FNM_LEADING_DIR)
    casefold = bool(flags & FNM_CASEFOLD)
    s_at_start = True
    s_last_at_start = True
    s_last_slash = False
    s_last_unpacked = ""

    def unpack_s() -> str:
        nonlocal s, s_at_start, s_last_at_start, s_last_slash, s_last_unpacked
        s_last_slash = s_last_unpacked == "/"
        s_last_unpacked, s = s[:1], s[1:]
        s_last_at_start = s_at_start
        s_at_start = False
        return s_last_unpacked

    while pattern:
        c, pattern = pattern[0], pattern[1:]
        if c == "?":
            if not s:
                return False
            sc = unpack_s()
            if pathname and sc == "/":
                return False
            if period and sc == "." and (s_last_at_start or (pathname and s_last_slash)):
                return False
        elif c == "*":
            pattern = pattern.lstrip("*")
            # (Go indexes s[0] here and would panic on an empty s with FNM_PERIOD; never reached below.)
            if period and s and s[0] == "." and (s_at_start or (pathname and s_last_unpacked == "/")):
                return False
            if not pattern:
                return (leadingdir or "/" not in s) if pathname else True
            if pathname and pattern[0] == "/":
                offset = s.find("/")
                if offset == -1:
                    return False
                s = s[offset:]
                unpack_s()
                pattern = pattern[1:]
                continue
            test = s
            while test:
                if fnmatch(pattern, test, flags & ~FNM_PERIOD):
                    return True
                if pathname and test[0] == "/":
                    break
                test = test[1:]
            return False
        elif c == "[":
            if not s:
                return False
            if pathname and s[0] == "/":
                return False
            sc = unpack_s()
            matched, pattern = _rangematch(pattern, sc, flags)
            if not matched:
                return False
        else:
            if c == "\\" and not noescape and pattern:
                c, pattern = pattern[0], pattern[1:]
            if not s:
                return False
            sc = unpack_s()
            if not (sc == c or (casefold and sc.lower() == c.lower())):
                return False
    return not s or (leadingdir and s[0] == "/")


def _rangematch(pattern: str, test: str, flags: int) -> tuple[bool, str]:
    """``rangematch``: one ``[...]`` class; returns whether it matched and the rest of the pattern."""
    if not pattern:
        return False, pattern
    casefold = bool(flags & FNM_CASEFOLD)
    noescape = bool(flags & FNM_NOESCAPE)
    if casefold:
        test = test.lower()
    negate = matched = False
    if pattern[0] in "^!":
        negate, pattern = True, pattern[1:]
    while not matched and len(pattern) > 1 and pattern[0] != "]":
        c, pattern = pattern[0], pattern[1:]
        if not noescape and c == "\\":
            if len(pattern) > 1:
                c, pattern = pattern[0], pattern[1:]
            else:
                return False, pattern
        if casefold:
            c = c.lower()
        if pattern[0] == "-" and len(pattern) > 1 and pattern[1] != "]":
            pattern = pattern[1:]
            c2, pattern = pattern[0], pattern[1:]
            if not noescape and c2 == "\\":
                if pattern:
                    c2, pattern = pattern[0], pattern[1:]
                else:
                    return False, pattern
            if casefold:
                c2 = c2.lower()
            if c <= test <= c2:
                matched = True
        elif c == test:
            matched = True
    ok = False
    while not ok and pattern:
        c, pattern = pattern[0], pattern[1:]
        if c == "\\" and pattern:
            pattern = pattern[1:]
        elif c == "]":
            ok = True
    return ok and matched != negate, pattern


# -- tokentype.go, lexer.go ---------------------------------------------------------------------


class TokenType(Enum):
    EOF = "EOF"
    EOL = "EOL"
    WHITESPACE = "WHITESPACE"
    COMMENT = "COMMENT"
    SEPARATOR = "SEPARATOR"
    NEGATION = "NEGATION"
    PATTERN = "PATTERN"
    ANY = "ANY"
    BAD = "BAD TOKEN"


CARRIAGE_RETURN_ERROR = "unexpected carriage return '\\r'"  # errors.go CarriageReturnError
INVALID_PATTERN_ERROR = "invalid pattern"  # errors.go InvalidPatternError


@dataclass(frozen=True)
class Token:
    type: TokenType
    word: str


def tokens(text: str) -> list[tuple[Token, str | None]]:
    """``lexer.Next`` until end of file: each token with the error the lexer returned with it.

    The lexer takes no input from the parser, so the whole stream can be read first.
    ``beginning`` (column 1) is "nothing read on this line yet"; a line ends only on a good end of
    line (a lone ``\\r`` is a BAD token, and the line goes on).
    """
    position = 0
    line_start = 0
    out: list[tuple[Token, str | None]] = []

    def read() -> str:
        # At the end of the stream the Go lexer returns EOF without moving; unread() of EOF does nothing.
        nonlocal position
        if position >= len(text):
            return ""
        position += 1
        return text[position - 1]

    def unread(rune: str) -> None:
        nonlocal position
        if rune:
            position -= 1

    def peek() -> str:
        rune = read()
        unread(rune)
        return rune

    def pattern() -> str:
        word = ""
        while True:
            r = read()
            if r in (" ", "\t", "\r", "\n", "/", ""):
                unread(r)
                return word
            if r == "*":
                if peek() == "*":
                    unread(r)
                    return word
                word += r
            elif r == "\\":
                after = peek()
                if after in ("\r", "\n", ""):
                    word += "\\"
                else:
                    read()
                    word += "\\" + after
            else:
                word += r

    while True:
        beginning = position == line_start
        r = read()
        error: str | None = None
        if r == "":
            out.append((Token(TokenType.EOF, ""), None))
            return out
        if r in (" ", "\t"):
            word = r
            while peek() in (" ", "\t"):
                word += read()
            kind = TokenType.WHITESPACE
        elif r in ("\r", "\n"):
            word = r
            kind = TokenType.EOL
            if r == "\r":
                after = read()
                if after != "\n":
                    unread(after)
                    error = CARRIAGE_RETURN_ERROR
                else:
                    word += after
        elif r == "/":
            word, kind = r, TokenType.SEPARATOR
        elif r == "*" and peek() == "*":
            read()
            word, kind = "**", TokenType.ANY
        elif r == "#" and beginning:
            word = r
            while peek() not in ("\r", "\n", ""):
                word += read()
            kind = TokenType.COMMENT
        elif r == "!" and beginning:
            word, kind = r, TokenType.NEGATION
        else:
            unread(r)
            word, kind = pattern(), TokenType.PATTERN
        if error is not None:
            kind = TokenType.BAD
        out.append((Token(kind, word), error))
        if kind is TokenType.EOL:
            line_start = position


# -- pattern.go ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """``NewPattern`` and the ``Match`` of its three kinds: ``name``, ``path`` and ``any``."""

    text: str
    negated: bool
    anchored: bool
    directory: bool
    expression: str
    kind: str  # "name", "path" or "any"
    any_tokens: tuple[Token, ...] = ()

    @classmethod
    def from_tokens(cls, sequence: list[Token]) -> Pattern | None:
        if not sequence:
            return None
        text = "".join(t.word for t in sequence)
        negated = sequence[0].type is TokenType.NEGATION
        if negated:
            sequence = sequence[1:]
        anchored = sequence[0].type is TokenType.SEPARATOR
        if anchored:
            sequence = sequence[1:]
        if not sequence:
            raise ValueError(f"go-gitignore would panic on the pattern {text!r} (an index out of range in NewPattern)")
        directory = sequence[-1].type is TokenType.SEPARATOR
        if directory:
            sequence = sequence[:-1]
        expression = "".join(t.word for t in sequence)
        if any(t.type is TokenType.ANY for t in sequence):
            kind = "any"
        elif any(t.type is TokenType.SEPARATOR for t in sequence):
            kind = "path"
        else:
            kind = "name"
        rest = tuple(t for t in sequence if t.type is not TokenType.SEPARATOR) if kind == "any" else ()
        return cls(text, negated, anchored, directory, expression, kind, rest)

    @property
    def ignore(self) -> bool:
        return not self.negated

    def match(self, path: str, is_dir: bool) -> bool:
        if self.directory and not is_dir:
            return False
        if self.kind == "name":
            return fnmatch(self.expression, path if self.anchored else path.rsplit("/", 1)[-1], 0)
        if self.kind == "path":
            # pattern.go tries the same FNM_PATHNAME match twice (its "trailing path elements" branch repeats it).
            return fnmatch(self.expression, path, FNM_PATHNAME)
        return self._match_any(path.split("/"), self.any_tokens)

    def _match_any(self, parts: list[str], rest: tuple[Token, ...]) -> bool:
        if not rest:
            return not parts
        if rest[0].type is TokenType.ANY:
            if not parts:
                return self._match_any(parts, rest[1:])
            return self._match_any(parts, rest[1:]) or self._match_any(parts[1:], rest)
        return bool(parts) and fnmatch(rest[0].word, parts[0], FNM_PATHNAME) and self._match_any(parts[1:], rest[1:])


# -- parser.go -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self._stream = tokens(text)
        self._at = 0
        self._undo: list[Token] = []
        self.errors: list[str] = []

    def parse(self) -> list[Pattern]:
        found = []
        while (pattern := self._next_pattern()) is not None:
            found.append(pattern)
        return found

    def _next_pattern(self) -> Pattern | None:
        """``parser.Next``: the error handler (azd passes none) keeps going after each error."""
        while True:
            token, error = self._next()
            if error is not None:
                self._skip_line(error)
                continue
            if token.type is TokenType.EOF:
                return None
            if token.type in (TokenType.EOL, TokenType.COMMENT):
                continue
            pattern, error = self._build(token)
            if error is not None:
                self._skip_line(error)
                continue
            if pattern is not None:
                return pattern

    def _skip_line(self, error: str | None) -> None:
        self.errors.append(error or "")
        while error is not None:
            error = self._skip()
            if error is not None:
                self.errors.append(error)

    def _next(self) -> tuple[Token, str | None]:
        if self._undo:
            return self._undo.pop(), None
        token, error = self._stream[min(self._at, len(self._stream) - 1)]
        self._at += 1
        return token, error

    def _skip(self) -> str | None:
        while True:
            token, error = self._next()
            if error is not None:
                return error
            if token.type in (TokenType.EOL, TokenType.EOF):
                return None

    def _build(self, token: Token) -> tuple[Pattern | None, str | None]:
        if token.type is TokenType.NEGATION:
            following, error = self._next()
            if error is not None:
                return None, error
            sequence, error = self._sequence(following)
            if error is not None:
                return None, error
            return Pattern.from_tokens([token, *sequence]), None
        sequence, error = self._sequence(token)
        if error is not None:
            return None, error
        while sequence and sequence[-1].type is TokenType.WHITESPACE:
            sequence.pop()
        return Pattern.from_tokens(sequence), None

    def _sequence(self, token: Token) -> tuple[list[Token], str | None]:
        if token.type is TokenType.SEPARATOR:
            return self._after_separator(token)
        if token.type is TokenType.ANY:
            return self._after_any(token)
        if token.type in (TokenType.WHITESPACE, TokenType.PATTERN):
            return self._after_pattern(token)
        self._undo.append(token)
        return [], INVALID_PATTERN_ERROR

    def _after(self, token: Token, allowed: dict) -> tuple[list[Token], str | None]:
        """The shared shape of ``separator``, ``any`` and ``pattern``: what may follow ``token``."""
        following, error = self._next()
        if error is not None:
            return [token], error
        if following.type in (TokenType.EOL, TokenType.EOF):
            return [token], None
        if following.type in allowed:
            rest, error = allowed[following.type](following)
            return [token, *rest], error
        self._undo.append(following)
        return [token], INVALID_PATTERN_ERROR

    def _after_separator(self, token: Token) -> tuple[list[Token], str | None]:
        return self._after(token, {TokenType.ANY: self._after_any, TokenType.WHITESPACE: self._after_pattern,
                                   TokenType.PATTERN: self._after_pattern, TokenType.SEPARATOR: self._after_separator})

    def _after_pattern(self, token: Token) -> tuple[list[Token], str | None]:
        return self._after(token, {TokenType.SEPARATOR: self._after_separator, TokenType.WHITESPACE: self._after_pattern,
                                   TokenType.PATTERN: self._after_pattern})

    def _after_any(self, token: Token) -> tuple[list[Token], str | None]:
        return self._after(token, {TokenType.SEPARATOR: self._after_separator, TokenType.WHITESPACE: self._end_of_line})

    def _end_of_line(self, _whitespace: Token) -> tuple[list[Token], str | None]:
        """``parser.eol`` after ``**`` and whitespace: only the end of the line may follow (the whitespace is dropped)."""
        token, error = self._next()
        if error is not None:
            return [], error
        self._undo.append(token)
        return [], None if token.type in (TokenType.EOL, TokenType.EOF) else INVALID_PATTERN_ERROR


# -- gitignore.go ----------------------------------------------------------------------------------


class GitIgnore:
    """``gitignore.New(reader, base, nil)`` and ``Relative``."""

    def __init__(self, text: str) -> None:
        parser = _Parser(text)
        self.patterns = parser.parse()
        self.errors = parser.errors

    def relative(self, path: str, is_dir: bool) -> Pattern | None:
        """The last pattern that matches ``path`` (relative, ``/``-separated), or None."""
        for pattern in reversed(self.patterns):
            if pattern.match(path, is_dir):
                return pattern
        return None


# -- project_utils.go createDeployableZip + rzip.go addDir -------------------------------------------

UTF8_BOM = "\ufeff"


def azd_package(root: Path, ignore_file: str = ".funcignore") -> list[str]:
    """The files ``azd deploy`` zips for a Python Function App service at ``root``, in zip order.

    Only the ignore-file branch is ported: without an ignore file azd applies defaults (a folder
    holding ``pyvenv.cfg``, ``__pycache__``) that this project does not rely on.
    """
    base = str(root.resolve())
    ignorer = GitIgnore((root / ignore_file).read_text(encoding="utf-8").removeprefix(UTF8_BOM))
    files: list[str] = []

    def include(src: str, name: str, is_dir: bool) -> bool:
        if name == ".azure" and is_dir:
            return False
        if name == ignore_file and not is_dir:
            return False
        if name == "local.settings.json" and not is_dir:
            return False
        # GitIgnore.Absolute: a path outside the base is never matched.
        if not src.startswith(base):
            return True
        match = ignorer.relative(src[len(base) + 1:], is_dir)
        return not (match is not None and match.ignore)

    def add_dir(dest: str, src: str, depth: int) -> None:
        if depth > 40:
            return
        for name in sorted(os.listdir(src)):
            path = os.path.join(src, name)
            is_link = os.path.islink(path)
            is_dir = os.path.isdir(path)
            if not include(path, name, is_dir):
                continue
            if is_link:
                target = os.path.realpath(path)
                if os.path.isdir(target):
                    add_dir(f"{dest}{name}/", target, depth + 1)
                else:
                    files.append(f"{dest}{name}")
            elif is_dir:
                add_dir(f"{dest}{name}/", path, depth)
            else:
                files.append(f"{dest}{name}")

    add_dir("", base, 0)
    return files
