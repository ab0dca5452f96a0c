#!/usr/bin/env python3
"""make_corpus_json.py - writes the seed corpus of fuzz_json (tests/fuzz/corpus_json/).

Each seed is two control bytes and a JSON text (fuzz_json.c): byte 0 picks the reader
(0 value, 1 command, 2 snapshot, 3 batch, 4 sync, 5 result), byte 1 is the value reader's
max_depth (255: 3000) and where the text is also cut and NUL'd. The seeds cover every
typed shape, numbers at the int64/uint64/double edges, escapes, surrogate pairs, invalid
UTF-8, \\u0000, nesting at and past the limits, and a few syntax errors. Run it from
anywhere; it rewrites the directory."""

from seeds import write_corpus

VALUE, COMMAND, SNAPSHOT, BATCH, SYNC, RESULT = range(6)
seeds = {}


def seed(name, mode, text, depth=64):
    if isinstance(text, str):
        text = text.encode()
    seeds[name] = bytes([mode, depth]) + text


# Values.
seed("v_object", VALUE, '{"b":1,"a":[true,false,null],"c":{"d":"x","0":{}},"10":[]}')
seed("v_scalars", VALUE, '[0,-0,1,-1,"",null,true,false]')
seed("v_ws", VALUE, ' \t\n\r{ "a" : [ 1 , 2 ] }\r\n ')
seed("v_int_edges", VALUE, "[9223372036854775807,-9223372036854775808,9223372036854775808,"
     "18446744073709551615,18446744073709551616,-9223372036854775809]")
seed("v_floats", VALUE, "[1.0,-0.0,0.1,1e+300,1.5e-07,5e-324,2.2250738585072014e-308,1E2,2.50]")
seed("v_float_overflow", VALUE, "[1e309]")
seed("v_int_huge", VALUE, "9" * 400)
seed("v_escapes", VALUE, r'"q\"b\\s\/n\nt\tr\rb\bf\fc\u0001\u001f~\u007f"')
seed("v_unicode", VALUE, '"\\u00e9\\u65e5\\ud83d\\ude00\u00e9\u65e5\U0001F600"')
seed("v_lone_high", VALUE, r'"\ud800"')
seed("v_lone_low", VALUE, r'["\udc00x"]')
seed("v_high_then_bmp", VALUE, r'"\ud800\u0041"')
seed("v_nul_value", VALUE, r'["a\u0000b"]')
seed("v_nul_key", VALUE, r'{"a\u0000":1}')
seed("v_bad_utf8", VALUE, b'"a\xffb"')
seed("v_overlong", VALUE, b'"\xc0\x80"')
seed("v_surrogate_raw", VALUE, b'"\xed\xa0\x80"')
seed("v_duplicate", VALUE, '{"a":1,"a":2}')
seed("v_num_keys", VALUE, '{"0":1,"01":2,"123456789012345678":3,"1234567890123456789":4,"-1":5}')
seed("v_depth_ok", VALUE, "[[[]]]", depth=3)
seed("v_depth_over", VALUE, '{"a":[1,{"b":{}}],"c":2}', depth=2)
seed("v_depth_zero", VALUE, "7", depth=0)
seed("v_deep_jansson", VALUE, "[" * 2050 + "]" * 2040, depth=255)  # fits -max_len=4096
seed("v_syntax", VALUE, '[1,2,]')
seed("v_leading_zero", VALUE, "[01]")
seed("v_trailing", VALUE, "{} x")
seed("v_bigint_then_error", VALUE, "[18446744073709551615, ]")
# Regressions found by fuzz_json (tests/test_json.c has them as unit tests).
seed("v_nul_after_number", VALUE, b"[1\0,2]")
seed("v_bigint_leading_zero", VALUE, "[18446744073709551616,018446744073709551616]")
# Commands.
seed("c_all", COMMAND, '{"action":"create","path":["a","12"],"props":{"z":1,"a":"x"},'
     '"parentDefault":{}}')
seed("c_update", COMMAND, '{"action":"update","path":["items","7","name"],"props":{"v":1.5}}')
seed("c_detete", COMMAND, '{"action":"detete","path":["x"],"extra":[1]}')
seed("c_bad_action", COMMAND, '{"action":"move"}')
seed("c_bad_path", COMMAND, '{"action":"create","path":["a",1]}')
seed("c_deep_props", COMMAND, '{"action":"create","props":' + "[" * 32 + "]" * 32 + "}")
# Snapshots.
seed("s_doc", SNAPSHOT, '{"commandCount":3,"document":{"items":{"1":{"n":"a"}},"u":1e-7}}')
seed("s_big_count", SNAPSHOT, '{"commandCount":18446744073709551615,"document":{}}')
seed("s_negative", SNAPSHOT, '{"commandCount":-1,"document":{}}')
seed("s_not_map", SNAPSHOT, '{"commandCount":0,"document":[]}')
# Batches.
seed("b_two", BATCH, '{"from":5,"completions":[{"command":{"action":"create","path":["l"],'
     '"props":{"t":"x"}},"createdId":"42"},{"command":{"action":"delete","path":["l","42"]}}]}')
seed("b_empty", BATCH, '{"from":0,"completions":[]}')
seed("b_bad_item", BATCH, '{"from":0,"completions":[{"command":{"action":"update"},'
     '"createdId":7}]}')
# Syncs.
seed("y_partial", SYNC, '{"isPartial":true,"diff":{"from":2,"completions":[{"command":'
     '{"action":"update","path":["a"],"props":{"x":null}}}]},"mappedPaths":{"a,1":["a","2"],'
     '"":[]}}')
seed("y_full", SYNC, '{"isPartial":false,"latest":{"commandCount":9,"document":{"k":[1,2]}}}')
seed("y_commas", SYNC, '{"isPartial":false,"latest":{"commandCount":0,"document":{}},'
     '"mappedPaths":{",":[""],"a,,b":["c"]}}')
# Results.
seed("r_full", RESULT, '{"applied":{"from":1,"completions":[{"command":{"action":"create",'
     '"path":["l"]},"createdId":"abc"}]},"sync":{"isPartial":true,"diff":{"from":1,'
     '"completions":[]},"mappedPaths":{}},"errors":[{"action":"delete","path":["l","9"],'
     '"errorMessage":"no such item"}]}')
seed("r_minimal", RESULT, '{"applied":{"from":0,"completions":[]}}')
seed("r_nul_message", RESULT, '{"applied":{"from":0,"completions":[]},"errors":[{"action":'
     '"update","path":[],"errorMessage":"a\\u0000b"}]}')
seed("r_missing", RESULT, '{"applied":{"from":0},"errors":[]}')

write_corpus("corpus_json", seeds)
