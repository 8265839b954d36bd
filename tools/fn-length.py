#!/usr/bin/env python3
"""Fail when a non-test Rust function is longer than a limit (the house rule: 120 lines).

    tools/fn-length.py [--max N] [DIR ...]     (default: core/src cli/src web/src)

Prints one line per offender, `file:line name length`, longest first, and exits 1 if there
is any. A function's length runs from the line holding `fn` to the line of its closing
brace, both included.

Exempt:
- test code: `#[test]` functions, any item under `#[cfg(test)]` (inline `mod tests { .. }`,
  impls, functions) and files declared by `#[cfg(test)] mod name;` (e.g. core/src/build/tests.rs),
  with everything below them;
- a data table: put the comment `// fn-length: table` on the line directly above the
  function, or anywhere in the run of comment and attribute lines directly above it. Use it
  only for a function that is a table (a match or array of literal rows), not for logic.

Python 3 standard library only; Rust is read with a small lexer (comments, strings, char
literals and lifetimes) that is enough for brace matching, not a full parser.
"""

import argparse
import os
import re
import sys

MARKER = "fn-length: table"
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def blank(text):
    """The text with comments, strings and char literals turned into spaces, lines kept."""
    out = []
    i, n = 0, len(text)

    def keep_lines(chunk):
        out.append("".join(c if c == "\n" else " " for c in chunk))

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            keep_lines(text[i:j])
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            keep_lines(text[i:j])
            i = j
        else:
            raw = re.compile(r'b?r(#*)"').match(text, i)
            if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                end = text.find('"' + raw.group(1), raw.end())
                j = n if end < 0 else end + 1 + len(raw.group(1))
                keep_lines(text[i:j])
                i = j
            elif c == '"':
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                keep_lines(text[i : j + 1])
                i = j + 1
            elif c == "'":
                # A char literal ('x', '\n', '\u{7f}') or a lifetime ('a, 'static).
                if text.startswith("\\", i + 1):
                    j = text.find("'", i + 3)
                    j = n if j < 0 else j + 1
                elif i + 2 < n and text[i + 2] == "'":
                    j = i + 3
                else:
                    j = i + 1
                    out.append(" ")
                    i = j
                    continue
                keep_lines(text[i:j])
                i = j
            else:
                out.append(c)
                i += 1
    return "".join(out)


def matching(code, open_at):
    """The index of the brace closing the one at `open_at`."""
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def body_start(code, i):
    """From a signature, the index of its body's `{`, or None for `;` (no body)."""
    depth = 0
    for j in range(i, len(code)):
        c = code[j]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and c == "{":
            return j
        elif depth == 0 and c == ";":
            return None
    return None


def is_test_attr(attr):
    inner = re.sub(r"\s+", "", attr)
    if inner == "test" or inner.endswith("::test"):
        return True
    return inner.startswith("cfg(") and re.search(r"\btest\b", inner) and "not(test" not in inner


def scan(path, code, raw_lines):
    """(functions [(line, name, length, marked)], test-only child module names)."""
    fns, test_mods = [], []
    line_of = []
    line = 1
    for c in code:
        line_of.append(line)
        if c == "\n":
            line += 1

    def marked(fn_line):
        k = fn_line - 2
        while k >= 0:
            s = raw_lines[k].strip()
            if MARKER in s:
                return True
            if not (s.startswith("//") or s.startswith("#[") or s.startswith("#![")):
                return False
            k -= 1
        return False

    pending_test = False
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "#":
            m = re.compile(r"#\s*(!?)\s*\[").match(code, i)
            if m:
                depth, j = 0, m.end() - 1
                while j < n:
                    if code[j] == "[":
                        depth += 1
                    elif code[j] == "]":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                if is_test_attr(code[m.end() : j]):
                    if m.group(1):
                        return [], []  # #![cfg(test)]: the whole file is test code
                    pending_test = True
                i = j + 1
                continue
        if c == "{":
            if pending_test:
                i = matching(code, i) + 1
                pending_test = False
                continue
        if c in "{};":
            pending_test = False
            i += 1
            continue
        m = IDENT.match(code, i)
        if not m:
            i += 1
            continue
        word = m.group(0)
        if i > 0 and (code[i - 1].isalnum() or code[i - 1] == "_"):
            i = m.end()
            continue
        if word in ("fn", "mod"):
            name = IDENT.match(code, re.compile(r"\s*").match(code, m.end()).end())
            open_at = body_start(code, m.end())
            if word == "mod" and name and open_at is None and pending_test:
                test_mods.append(name.group(0))
            if open_at is None:
                semi = code.find(";", m.end())
                i = n if semi < 0 else semi + 1
                pending_test = False
                continue
            if pending_test:
                i = matching(code, open_at) + 1
                pending_test = False
                continue
            if word == "fn" and name:
                close = matching(code, open_at)
                start = line_of[i]
                length = line_of[close] - start + 1
                fns.append((start, name.group(0), length, marked(start)))
            i = open_at + 1
            continue
        i = m.end()
    return fns, test_mods


def module_dir(path):
    base = os.path.basename(path)
    if base in ("mod.rs", "lib.rs", "main.rs"):
        return os.path.dirname(path)
    return path[: -len(".rs")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=120)
    ap.add_argument("dirs", nargs="*", default=["core/src", "cli/src", "web/src"])
    args = ap.parse_args()

    files = sorted(
        os.path.join(root, f)
        for d in args.dirs
        for root, _, names in os.walk(d)
        for f in names
        if f.endswith(".rs")
    )
    parsed, test_paths = {}, set()
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        parsed[path] = scan(path, blank(text), text.splitlines())
        for name in parsed[path][1]:
            d = module_dir(path)
            test_paths.update(
                {os.path.join(d, name + ".rs"), os.path.join(d, name) + os.sep}
            )

    def is_test(path):
        return any(path == t or (t.endswith(os.sep) and path.startswith(t)) for t in test_paths)

    over = [
        (length, path, line, name)
        for path, (fns, _) in parsed.items()
        if not is_test(path)
        for line, name, length, marked in fns
        if length > args.max and not marked
    ]
    for length, path, line, name in sorted(over, key=lambda o: (-o[0], o[1], o[2])):
        print(f"{path}:{line} {name} {length}")
    if over:
        print(f"fn-length: {len(over)} function(s) over {args.max} lines", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
