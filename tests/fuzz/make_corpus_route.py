#!/usr/bin/env python3
"""make_corpus_route.py - writes the seed corpus of fuzz_route (tests/fuzz/corpus_route/).

Each seed is a request as hub/route.h takes it: the decoded path on the first line, then one
query argument fragment ("name=value", as lws_hdr_copy_fragment gives it) per line. Seeds
cover every route, every error, the argument buffer limits, numbers at and past 2^64, and
file paths that try to leave their directory. Run it from anywhere; it rewrites the
directory."""

from seeds import write_corpus

seeds = {
    "healthz": ["/healthz"],
    "metrics": ["/metrics", "token=abc"],
    "get": ["/v1/models/doc-1"],
    "get_at": ["/v1/models/A-z_0.9:x", "at=42"],
    "get_at_max": ["/v1/models/m", "at=18446744073709551615"],
    "get_at_over": ["/v1/models/m", "at=18446744073709551616"],
    "get_at_sign": ["/v1/models/m", "at= -1"],
    "get_at_zeros": ["/v1/models/m", "at=0007"],
    "get_at_long": ["/v1/models/m", "x" * 70, "at=5"],
    "get_bad_name": ["/v1/models/a b"],
    "get_long_name": ["/v1/models/" + "n" * 201],
    "history": ["/v1/models/m/history", "from=3", "to=9", "token=t.o.k"],
    "history_no_from": ["/v1/models/m/history", "to=9"],
    "history_bad_to": ["/v1/models/m/history", "from=1", "to=x"],
    "audit": ["/v1/models/m/audit", "from=12"],
    "audit_q": ["/v1/models/m/audit?from=1"],
    "audit_bad": ["/v1/models/m/audit", "from=1.5"],
    "model_other": ["/v1/models/m/snapshot"],
    "console_models": ["/v1/console/models", "q=ab c", "limit=1000"],
    "console_limit0": ["/v1/console/models", "limit=0"],
    "console_limit_big": ["/v1/console/models", "limit=1001"],
    "console_model": ["/v1/console/models/m.1", "token=x"],
    "console_model_bad": ["/v1/console/models/a/b"],
    "console_feed": ["/v1/console/feed"],
    "console_other": ["/v1/console/"],
    "console_redirect": ["/console"],
    "console_index": ["/console/"],
    "console_file": ["/console/assets/a.css"],
    "console_escape": ["/console/../x"],
    "static_index": ["/"],
    "static_file": ["/app/main.js", "v=2"],
    "static_dir": ["/docs/"],
    "static_dotdot": ["/a/../../etc/passwd"],
    "static_dots": ["/..."],
    "static_backslash": ["/a\\..\\..\\b"],
    "static_double": ["//etc/passwd"],
    "static_nul": ["/a\0/../../x"],
    "static_relative": ["etc/passwd"],
    "static_empty": [""],
}

write_corpus("corpus_route", {name: "\n".join(lines).encode("latin-1") for name, lines in seeds.items()})
