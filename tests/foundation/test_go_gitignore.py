"""The port of azd's packaging rules (tests/foundation/go_gitignore.py) against the libraries' own test cases.

Cases copied from the test files at the pinned commits: danwakefield/fnmatch ``fnmatch_test.go``
(cbb64ac3d964b81592e64f957ad53df015803288) and denormal/go-gitignore ``defn_test.go`` with
``parser_test.go`` and ``match_test.go`` (ae8ad1d07817b3d3b49cabb21559a3f493a357a3).
"""

from __future__ import annotations

import pytest

from tests.foundation.go_gitignore import (
    CARRIAGE_RETURN_ERROR,
    FNM_CASEFOLD,
    FNM_NOESCAPE,
    FNM_PATHNAME,
    FNM_PERIOD,
    INVALID_PATTERN_ERROR,
    GitIgnore,
    fnmatch,
)

# fnmatch_test.go: TestMatch, TestWildcard, TestWildcardSlash, TestWildcardFNMPeriod, TestQuestionMark,
# TestQuestionMarkExceptions, TestRange, TestBackSlash, TestLiteral (pattern, input, flags, want).
FNMATCH_CASES = [
    ("", "", 0, True), ("*", "", 0, True), ("*", "foo", 0, True), ("*", "*", 0, True), ("**", "f", 0, True),
    ("**", "foo.txt", 0, True), ("*.*", "foo.txt", 0, True), ("foo*.txt", "foobar.txt", 0, True), ("foo.txt", "foo.txt", 0, True),
    ("foo\\.txt", "foo.txt", 0, True), ("foo\\.txt", "foo.txt", FNM_NOESCAPE, False),
    ("*", "   ", 0, True), ("*", ".foo", 0, True), ("*", "わたし", 0, True),
    ("*", "foo/bar", 0, True), ("*", "/", 0, True), ("*", "/foo", 0, True), ("*", "foo/", 0, True),
    ("*", "foo/bar", FNM_PATHNAME, False), ("*", "/", FNM_PATHNAME, False), ("*", "/foo", FNM_PATHNAME, False), ("*", "foo/", FNM_PATHNAME, False),
    ("*", ".foo", FNM_PERIOD, False), ("/*", "/.foo", FNM_PERIOD, True), ("/*", "/.foo", FNM_PERIOD | FNM_PATHNAME, False),
    ("?", "", 0, False), ("?", "f", 0, True), ("?", ".", 0, True), ("?", "?", 0, True), ("?", "foo", 0, False), ("?", "わ", 0, True),
    ("?", "わた", 0, False), ("?", "/", 0, True), ("?", "/", FNM_PATHNAME, False),
    ("?", ".", FNM_PERIOD, False), ("foo?", "foo.", FNM_PERIOD, True), ("/?", "/.", FNM_PERIOD, True), ("/?", "/.", FNM_PERIOD | FNM_PATHNAME, False),
    ("[a-z]", "a", 0, True), ("[a-z]", "q", 0, True), ("[a-z]", "z", 0, True), ("[わ]", "わ", 0, True), ("[a-z]", "-", 0, False),
    ("[a-z]", " ", 0, False), ("[a-z]", "D", 0, False), ("[a-z]", "é", 0, False), ("[a-z]", "ab", 0, False), ("[a-z]", "", 0, False),
    ("[a-z]foo", "afoo", 0, True), ("[-az]", "-", 0, True), ("[-az]", "a", 0, True), ("[-az]", "b", 0, False), ("[az-]", "-", 0, True),
    ("[a\\-z]", "-", 0, True), ("[a\\-z]", "b", 0, False), ("[a\\-z]", "\\", FNM_NOESCAPE, True), ("[a\\-z]", "-", FNM_NOESCAPE, False),
    ("[^a-z]", "a", 0, False), ("[!a-z]", "b", 0, False), ("[!a-z]", "é", 0, True), ("[!a-z]", "わ", 0, True), ("[^-az]", "-", 0, False),
    ("[^-az]", "b", 0, True), ("[abc]", "a", 0, True), ("[abc]", "c", 0, True), ("[abc]", "d", 0, False), ("[a-cg-z]", "c", 0, True),
    ("[a-cg-z]", "h", 0, True), ("[a-cg-z]", "d", 0, False), ("[abc/def]", "/", 0, True), ("[abc/def]", "/", FNM_PATHNAME, False),
    ("[.-0]", "/", 0, True), ("[.-0]", "/", FNM_PATHNAME, False), ("[a-z]", "A", 0, False), ("[A-Z]", "a", 0, False),
    ("[a-z]", "A", FNM_CASEFOLD, True), ("[A-Z]", "a", FNM_CASEFOLD, True),
    ("\\\\", "\\", 0, True), ("\\*", "*", 0, True), ("\\*", "foo", 0, False), ("\\?", "?", 0, True), ("\\?", "f", 0, False),
    ("\\[a-z]", "[a-z]", 0, True), ("\\[a-z]", "a", 0, False), ("\\foo", "foo", 0, True), ("\\わ", "わ", 0, True),
    ("\\\\", "\\", FNM_NOESCAPE, False), ("\\\\", "\\\\", FNM_NOESCAPE, True), ("\\*", "foo", FNM_NOESCAPE, False), ("\\*", "\\*", FNM_NOESCAPE, True),
    ("foo", "foo", 0, True), ("foo", "foobar", 0, False), ("foobar", "foo", 0, False), ("foo", "Foo", 0, False), ("わたし", "わたし", 0, True),
    ("foo", "FOO", FNM_CASEFOLD, True), ("FoO", "fOo", FNM_CASEFOLD, True),
]


@pytest.mark.parametrize(("pattern", "text", "flags", "want"), FNMATCH_CASES)
def test_given_the_fnmatch_library_cases_when_matched_then_the_port_agrees(pattern, text, flags, want):
    assert fnmatch(pattern, text, flags) is want


# defn_test.go _GITIGNORE (12 good patterns, 4 bad), _GITINVALID (1 good, 10 errors), _GITIGNORE_WHITESPACE.
GITIGNORE = "\n".join([
    '',
    '# example .gitignore',
    '',
    '!*.go',
    '',
    '*.o',
    '*.a',
    '',
    '/ignore/this/path/',
    '',
    '# the following line has trailing whitespace',
    '/and/**/all/**/these/**  \t ',
    '!/but/not/this\\ ',
    '',
    'we support   spaces',
    '',
    '/**/this.is.not/a ** valid/pattern',
    '/**/nor/is/***/this',
    '/nor/is***this',
    'northis** \t x',
    '',
    'but \\this\\ is / valid\\#',
    '\\',
    '',
    'so\tis this#',
    'and this is #3 ok too',
    ' / //',
    '',
])
GITINVALID = "# the following two lines will trigger repeated lexer errors\nx\rx\rx\rx\n\rx\rx\rx\n!\rx\n/my/valid/pattern\n!\n** *\n/\r"
GITIGNORE_WHITESPACE = "\n# this is an empty .gitignore file\n#\t- the following lines contains just whitespace\n \n  \t\t  \t\n"


def test_given_the_library_example_file_when_parsed_then_12_patterns_and_4_errors_are_found():
    parsed = GitIgnore(GITIGNORE)
    assert (len(parsed.patterns), len(parsed.errors)) == (12, 4)
    assert [p.text for p in parsed.patterns][:4] == ["!*.go", "*.o", "*.a", "/ignore/this/path/"]


def test_given_the_library_invalid_file_when_parsed_then_one_pattern_and_its_ten_errors_are_found():
    parsed = GitIgnore(GITINVALID)
    assert [p.text for p in parsed.patterns] == ["/my/valid/pattern"]
    assert parsed.errors == [CARRIAGE_RETURN_ERROR] * 7 + [INVALID_PATTERN_ERROR] * 2 + [CARRIAGE_RETURN_ERROR]


def test_given_a_file_of_comments_and_whitespace_when_parsed_then_it_has_no_pattern():
    parsed = GitIgnore(GITIGNORE_WHITESPACE)
    assert (parsed.patterns, parsed.errors) == ([], [])


# defn_test.go _GITMATCH and _GITMATCHES (path, matching pattern, ignored); a trailing "/" marks a directory.
GITMATCH = """

*.[oa]
*.html
*.min.js

!foo*.html
foo-excl.html

vmlinux*

\\!important!.txt

log/*.log
!/log/foo.log

**/logdir/log
**/foodir/bar
exclude/**

!findthis*

**/hide/**
subdir/subdir2/

/rootsubdir/

dirpattern/

README.md

# arch/foo/kernel/.gitignore
!arch/foo/kernel/vmlinux*

# htmldoc/.gitignore
!htmldoc/*.html

# git-sample-3/.gitignore
git-sample-3/*
!git-sample-3/foo
git-sample-3/foo/*
!git-sample-3/foo/bar

Documentation/*.pdf
Documentation/**/p*.pdf
"""
GITMATCHES = [
    ("!important!.txt", "\\!important!.txt", True), ("arch/", "", False), ("arch/foo/", "", False), ("arch/foo/kernel/", "", False),
    ("arch/foo/kernel/vmlinux.lds.S", "!arch/foo/kernel/vmlinux*", False), ("arch/foo/vmlinux.lds.S", "vmlinux*", True),
    ("bar/", "", False), ("bar/testfile", "", False), ("dirpattern", "", False), ("my/other/path/to/dirpattern", "", False),
    ("my/path/to/dirpattern/", "dirpattern/", True), ("my/path/to/dirpattern/some_file.txt", "", False), ("Documentation/", "", False),
    ("Documentation/foo-excl.html", "foo-excl.html", True), ("Documentation/foo.html", "!foo*.html", False),
    ("Documentation/gitignore.html", "*.html", True), ("Documentation/test.a.html", "*.html", True), ("exclude/", "exclude/**", True),
    ("exclude/dir1/", "exclude/**", True), ("exclude/dir1/dir2/", "exclude/**", True), ("exclude/dir1/dir2/dir3/", "exclude/**", True),
    ("exclude/dir1/dir2/dir3/testfile", "exclude/**", True), ("exclude/other_file.txt", "exclude/**", True), ("file.o", "*.[oa]", True),
    ("foo/exclude/some_file.txt", "", False), ("foo/exclude/other/file.txt", "", False), ("foodir/", "", False),
    ("foodir/bar/", "**/foodir/bar", True), ("foodir/bar/testfile", "", False), ("git-sample-3/", "", False),
    ("git-sample-3/foo/", "!git-sample-3/foo", False), ("git-sample-3/foo/bar/", "!git-sample-3/foo/bar", False),
    ("git-sample-3/foo/test/", "git-sample-3/foo/*", True), ("git-sample-3/test/", "git-sample-3/*", True), ("htmldoc/", "", False),
    ("htmldoc/docs.html", "!htmldoc/*.html", False), ("htmldoc/jslib.min.js", "*.min.js", True), ("lib.a", "*.[oa]", True),
    ("log/", "", False), ("log/foo.log", "!/log/foo.log", False), ("log/test.log", "log/*.log", True), ("rootsubdir/", "/rootsubdir/", True),
    ("rootsubdir/foo", "", False), ("src/", "", False), ("src/findthis.o", "!findthis*", False), ("src/internal.o", "*.[oa]", True),
    ("subdir/", "", False), ("subdir/hide/", "**/hide/**", True), ("subdir/hide/foo", "**/hide/**", True), ("subdir/logdir/", "", False),
    ("subdir/logdir/log/", "**/logdir/log", True), ("subdir/logdir/log/findthis.log", "!findthis*", False),
    ("subdir/logdir/log/foo.log", "", False), ("subdir/logdir/log/test.log", "", False), ("subdir/rootsubdir/", "", False),
    ("subdir/rootsubdir/foo", "", False), ("subdir/subdir2/", "subdir/subdir2/", True), ("subdir/subdir2/bar", "", False),
    ("README.md", "README.md", True), ("my-path/README.md", "README.md", True), ("my-path/also/README.md", "README.md", True),
    ("Documentation/git.pdf", "Documentation/*.pdf", True), ("Documentation/ppc/ppc.pdf", "Documentation/**/p*.pdf", True),
    ("tools/perf/Documentation/perf.pdf", "", False),
]


def test_given_the_library_match_file_when_parsed_then_every_line_is_a_pattern_and_none_is_bad():
    # match_test.go asserts _GITBADMATCHPATTERNS (0) errors; _GITMATCHPATTERNS (24) is never used and predates the
    # two Documentation lines: the file has 26 pattern lines.
    parsed = GitIgnore(GITMATCH)
    assert (len(parsed.patterns), parsed.errors) == (26, [])


@pytest.mark.parametrize(("path", "pattern", "ignored"), GITMATCHES, ids=[m[0] for m in GITMATCHES])
def test_given_the_library_match_cases_when_matched_then_the_port_finds_the_same_pattern(path, pattern, ignored):
    match = GitIgnore(GITMATCH).relative(path.rstrip("/"), path.endswith("/"))
    assert (match.text if match else "", bool(match and match.ignore)) == (pattern, ignored)


def test_given_an_anchored_star_when_matched_then_it_reaches_into_folders_unlike_git():
    # pattern.go name.Match: "/*" is an anchored name pattern, fnmatch(pattern, path, 0) lets "*" match "/".
    rules = GitIgnore("/*\n!/handlers/\n")
    folder, nested = rules.relative("handlers", True), rules.relative("handlers/__init__.py", False)
    assert folder is not None and folder.text == "!/handlers/"
    assert nested is not None and nested.text == "/*"
