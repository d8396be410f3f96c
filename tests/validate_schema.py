#!/usr/bin/python3
"""Validate JSON documents, one per line, against a chatmem JSON Schema.

usage: validate_schema.py [--invalid] SCHEMA_FILE [FILE...]

Reads the files (or stdin when none, or for "-") line by line; blank lines
are skipped. Each line must be one JSON document, valid UTF-8, with no
NaN/Infinity and no duplicate keys, that the schema (draft 2020-12, format
checking off) accepts. Prints "ok N documents" and exits 0, or prints the
first problem as FILE:LINE: MESSAGE and exits 1.

--invalid inverts the check, for fixtures of bad documents: every document
must be rejected (by the JSON reader or the schema); prints
"ok N documents rejected".

Exit status 2: usage error or a schema that is not a valid schema.
"""
import json
import sys

try:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match
except ImportError:
    sys.stderr.write("validate_schema.py: needs python3-jsonschema; "
                     "run it with /usr/bin/python3\n")
    sys.exit(2)


def no_constants(name):
    raise ValueError("%s is not JSON" % name)


def no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key %r" % key)
        obj[key] = value
    return obj


def read_document(raw):
    """Returns the document, or raises ValueError with the reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("invalid UTF-8 at byte %d" % e.start)
    doc = json.loads(text, parse_constant=no_constants,
                     object_pairs_hook=no_duplicates)
    # Python accepts lone surrogate escapes; chatmem does not.
    check_strings(doc)
    return doc


def check_strings(value):
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("invalid UTF-8: lone surrogate escape")
    elif isinstance(value, list):
        for item in value:
            check_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_strings(key)
            check_strings(item)


def where(error):
    path = "".join("[%d]" % p if isinstance(p, int) else ".%s" % p
                   for p in error.absolute_path)
    return "$" + path


def narrow(error):
    """For a oneOf/anyOf that no branch satisfied, the error of the branch
    that came closest (fewest errors) says more than the summary."""
    while error.validator in ("oneOf", "anyOf") and error.context:
        branches = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        closest = min(branches.values(), key=len)
        error = best_match(closest)
    return error


def describe(error):
    error = narrow(error)
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return "%s: %s" % (where(error), message)


def lines_of(names):
    if not names:
        names = ["-"]
    for name in names:
        if name == "-":
            stream, label = sys.stdin.buffer, "<stdin>"
        else:
            stream, label = open(name, "rb"), name
        try:
            for number, raw in enumerate(stream, 1):
                yield label, number, raw
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


def main(argv):
    expect_invalid = False
    args = argv[1:]
    if args and args[0] == "--invalid":
        expect_invalid = True
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2
    try:
        with open(args[0], "rb") as f:
            schema = json.loads(f.read().decode("utf-8"))
        Draft202012Validator.check_schema(schema)
    except Exception as e:  # any reason the schema is unusable
        sys.stderr.write("%s: not a usable schema: %s\n" % (args[0], e))
        return 2
    validator = Draft202012Validator(schema)

    count = 0
    for label, number, raw in lines_of(args[1:]):
        if not raw.strip():
            continue
        count += 1
        try:
            doc = read_document(raw.rstrip(b"\r\n"))
            # best_match picks the most relevant error (it looks inside
            # oneOf/anyOf) rather than the first one found.
            error = best_match(validator.iter_errors(doc))
            problem = describe(error) if error else None
        except ValueError as e:
            problem = "not JSON: %s" % e
        if expect_invalid and not problem:
            print("%s:%d: accepted, expected a rejection" % (label, number))
            return 1
        if not expect_invalid and problem:
            print("%s:%d: %s" % (label, number, problem))
            return 1
    if expect_invalid:
        print("ok %d documents rejected" % count)
    else:
        print("ok %d documents" % count)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except OSError as e:
        sys.stderr.write("validate_schema.py: %s\n" % e)
        sys.exit(2)
