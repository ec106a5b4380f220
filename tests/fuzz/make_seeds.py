#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/<name>.

The seeds are committed; this script says where each comes from and regenerates them (it
overwrites files of the names it writes and leaves others, such as crash regressions, alone).

  tests/fuzz/make_seeds.py
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"
NUL = b"\0"


def read(relative):
    return (ROOT / relative).read_bytes()


def dumps(value):
    return json.dumps(value, separators=(",", ":")).encode()


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def nested(depth, open_=b"[", close=b"]", inner=b""):
    return open_ * depth + inner + close * depth


def yaml_bomb(levels=9, fan=10, indent=""):
    """The billion laughs, in YAML: each level names the previous one `fan` times."""
    lines = [f"{indent}l0: &l0 [" + ", ".join(["lol"] * fan) + "]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


# --- events ---------------------------------------------------------------------------------

USER_EVENT = {"msg_id": "6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11", "user_id": "user-00042",
              "type": "user.updated", "ts": 1700000000000,
              "data": {"email": "user-00042@example.com", "plan": "pro", "age": 30}}
AUTHORIZED = {"msg_id": "0b7a3c52-1f0e-4d2a-8c49-7e4f5a6b3c21", "account_id": "acc-0007",
              "type": "payment.authorized", "amount": 1250, "currency": "EUR"}
REFUNDED = {"msg_id": "9d2e4f60-3a1b-4c5d-8e7f-a0b1c2d3e4f5", "account_id": "acc-0007",
            "type": "payment.refunded", "amount": 1250,
            "refund_of": "0b7a3c52-1f0e-4d2a-8c49-7e4f5a6b3c21"}


def variant(event, **changes):
    out = dict(event)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def events():
    """(name, value bytes) of messages: the demo events, and each way one can be bad."""
    valid = dumps(USER_EVENT)
    yield "user_valid", valid
    yield "user_signed_up_minimal", dumps({"msg_id": USER_EVENT["msg_id"], "user_id": "u",
                                           "type": "user.signed_up", "ts": 0})
    yield "user_deleted_pretty", json.dumps(variant(USER_EVENT, type="user.deleted"),
                                             indent=2).encode()
    yield "user_missing_key", dumps(variant(USER_EVENT, user_id=None))
    yield "user_empty_key", dumps(variant(USER_EVENT, user_id=""))
    yield "user_numeric_key", dumps(variant(USER_EVENT, user_id=12345678901234567890))
    yield "user_object_key", dumps(variant(USER_EVENT, user_id={"id": 1}))
    yield "user_missing_id", dumps(variant(USER_EVENT, msg_id=None))
    yield "user_bad_uuid", dumps(variant(USER_EVENT, msg_id="not-a-uuid-123"))
    yield "user_ts_string", dumps(variant(USER_EVENT, ts="yesterday"))
    yield "user_ts_float_integral", valid.replace(b"1700000000000", b"1700000000000.0")
    yield "user_ts_huge", valid.replace(b"1700000000000", b"18446744073709551616")
    yield "user_ts_overflow_double", valid.replace(b"1700000000000", b"1e400")
    yield "user_ts_negative", valid.replace(b"1700000000000", b"-1")
    yield "user_enum", dumps(variant(USER_EVENT, type="user.exploded"))
    yield "user_age_bounds", dumps(variant(USER_EVENT, data={"age": 12.5, "plan": "gold",
                                                             "email": "x" * 300}))
    yield "user_long_user_id", dumps(variant(USER_EVENT, user_id="u" * 70))
    yield "user_many_failures", dumps({"msg_id": 1, "user_id": [], "type": None, "ts": {},
                                       "data": []})
    yield "user_duplicate_keys", b'{"user_id":"a","user_id":"b","msg_id":"x","msg_id":"y"}'
    yield "user_nul_in_key", dumps(variant(USER_EVENT, user_id="a\u0000b"))
    yield "user_escapes", dumps(variant(USER_EVENT, user_id="\u00e9\u2028\ud83d\ude00\"\\/"))
    yield "user_bom", b"\xef\xbb\xbf" + valid
    yield "user_invalid_utf8", valid.replace(b"user-00042", b"user-\xc3\x28\xff")
    yield "user_overlong_utf8", valid.replace(b"user-00042", b"\xc0\xaf")
    yield "user_lone_surrogate", valid.replace(b"user-00042", b"\\ud800")
    yield "user_truncated", valid[:-7]
    yield "user_trailing_garbage", valid + b" {}"
    yield "not_json", b"this is not json {"
    yield "not_object", b"[1,2,3]"
    yield "scalar", b"42"
    yield "null", b"null"
    yield "whitespace", b" \t\r\n"
    yield "deep_127", b'{"user_id":"u","x":' + nested(126) + b"}"
    yield "deep_129", b'{"user_id":"u","x":' + nested(128) + b"}"
    yield "deep_brackets_in_string", b'{"user_id":"' + b"[" * 300 + b'"}'
    yield "unbalanced_closers", b"]]]]}}}}" + valid
    yield "payment_authorized", dumps(AUTHORIZED)
    yield "payment_refunded", dumps(REFUNDED)
    yield "payment_unknown_type", dumps(variant(AUTHORIZED, type="payment.chargeback"))
    yield "payment_type_number", dumps(variant(AUTHORIZED, type=7))
    yield "payment_currency_pattern", dumps(variant(AUTHORIZED, currency="euro"))
    yield "payment_amount_zero", dumps(variant(AUTHORIZED, amount=0))
    yield "payment_refund_missing", dumps(variant(REFUNDED, refund_of=None))
    yield "big_value", dumps(variant(USER_EVENT, data={"blob": "b" * 3000}))


# --- schema_fuzz ----------------------------------------------------------------------------

def schema_seeds():
    user = read("schemas/user-event.json")
    authorized = read("schemas/payments/authorized.json")
    refunded = read("schemas/payments/refunded.json")
    for name, value in events():
        schema = authorized if name.startswith("payment_authorized") else \
            refunded if name.startswith("payment_refunded") else user
        yield f"demo_{name}", schema + NUL + value
    yield "demo_self", user

    def seed(name, schema, document):
        schema = schema if isinstance(schema, bytes) else dumps(schema)
        document = document if isinstance(document, bytes) else dumps(document)
        return name, schema + NUL + document

    # $ref: local, to the demo schema files (copied next to the fuzzed one), $id, remote.
    yield seed("ref_file", {"$ref": "schemas/user-event.json"}, USER_EVENT)
    yield seed("ref_file_pointer", {"properties": {"ts": {
        "$ref": "schemas/user-event.json#/properties/ts"}}}, {"ts": -5})
    yield seed("ref_payments_dir", {"oneOf": [{"$ref": "schemas/payments/authorized.json"},
                                              {"$ref": "schemas/payments/refunded.json"}]},
               AUTHORIZED)
    yield seed("ref_outside_dir", {"$ref": "../../etc/passwd"}, {})
    yield seed("ref_remote", {"$ref": "http://example.com/schema.json"}, {})
    yield seed("ref_root_cycle", {"$ref": "#"}, {})
    yield seed("ref_cycle", {"definitions": {"a": {"$ref": "#/definitions/b"},
                                             "b": {"allOf": [{"$ref": "#/definitions/a"}]}},
                             "$ref": "#/definitions/a"}, {})
    yield seed("ref_recursive_tree", {"definitions": {"node": {
        "type": "object", "properties": {"children": {"type": "array",
                                                      "items": {"$ref": "#/definitions/node"}}}}},
        "$ref": "#/definitions/node"}, {"children": [{"children": [{"children": 1}]}]})
    yield seed("ref_ids", {"$id": "http://example.com/root.json", "definitions": {
        "a": {"$id": "#foo", "type": "integer"},
        "b": {"$id": "other.json", "definitions": {"x": {"$ref": "#/definitions/y"},
                                                   "y": {"type": "string"}}}},
        "properties": {"p": {"$ref": "#foo"}, "q": {"$ref": "other.json#/definitions/x"}}},
        {"p": 1.5, "q": 2})
    yield seed("ref_escaped_pointer", {"definitions": {"a/b": {"type": "null"}, "c~d": {
        "type": "null"}, "e%f": {"type": "null"}},
        "properties": {"x": {"$ref": "#/definitions/a~1b"}, "y": {"$ref": "#/definitions/c~0d"},
                       "z": {"$ref": "#/definitions/e%25f"}}}, {"x": 1, "y": 2, "z": 3})
    yield seed("ref_dag_small", {"definitions": {
        f"d{i}": {"allOf": [{"$ref": f"#/definitions/d{i + 1}"}] * 2} for i in range(4)} | {
        "d4": {"type": "string"}}, "$ref": "#/definitions/d0"}, 1)

    # Catastrophic regexes (bounded by the polynomial executor and the subject length).
    yield seed("pattern_nested_quantifier", {"pattern": "^(a+)+$"}, "a" * 40 + "!")
    yield seed("pattern_alternation_long", {"pattern": "^(a|b)*$"}, "ab" * 2100)
    yield seed("pattern_too_long", {"pattern": "x"}, "y" * 4097)
    yield seed("pattern_backreference", {"pattern": "(a)\\1"}, "aa")
    yield seed("pattern_invalid", {"pattern": "a)(b"}, "a")
    yield seed("pattern_unicode", {"pattern": "^\\p{L}+$|^[\\u00e9]$"}, "\u00e9")
    yield seed("pattern_repetition", {"pattern": "^(a{2,50}){3}b?$"}, "a" * 120)
    yield seed("pattern_properties", {"patternProperties": {"^(a+)+$": {"type": "string"},
                                                            "^x-": False}},
               {"a" * 30 + "!": 1, "x-y": 1, "aaa": 2})
    yield seed("pattern_properties_long_name", {"patternProperties": {"^a": {}}},
               {"a" * 5000: 1})
    yield seed("pattern_not_string", {"pattern": 5}, "a")

    # Numbers: huge, tiny, integral decimals, fractional multipleOf.
    yield seed("numbers_huge", {"type": "integer", "minimum": -1e308, "maximum": 1e308,
                                "exclusiveMaximum": 18446744073709551615},
               b"18446744073709551616")
    yield seed("numbers_overflow_document", {"type": "number"}, b"1e400")
    yield seed("numbers_multiple_of_fraction", {"multipleOf": 0.01}, 12391239123.1)
    yield seed("numbers_multiple_of_tiny", {"multipleOf": 1e-308}, 1e308)
    yield seed("numbers_integer_as_decimal", {"type": "integer"}, b"1.0")
    yield seed("numbers_count_decimal", {"maxItems": 2.0, "minLength": 1.5}, [1, 2, 3])
    yield seed("numbers_negative_zero", {"const": 0, "minimum": -0.0}, b"-0.0")

    # Encodings and JSON edge cases.
    yield "bom_schema", b"\xef\xbb\xbf" + dumps({"type": "object"}) + NUL + b"{}"
    yield "bom_document", dumps({"type": "object"}) + NUL + b"\xef\xbb\xbf{}"
    yield "invalid_utf8_schema", b'{"const":"\xff\xfe"}' + NUL + b'"a"'
    yield "invalid_utf8_document", b'{"type":"string"}' + NUL + b'"\xc3\x28"'
    yield "nul_in_strings", dumps({"const": "a\u0000b", "title": "\u0000"}) + NUL + \
        dumps("a\u0000b")
    yield "duplicate_keys", b'{"type":"string","type":"integer"}' + NUL + b"1"
    yield "reserved_keyword", dumps({"$kpipe:pattern": "x"}) + NUL + b'"a"'
    yield "boolean_true", b"true" + NUL + b"1"
    yield "boolean_false", b"false" + NUL + b"1"
    yield "not_a_schema", b"[1]" + NUL + b"1"
    yield "empty_schema", NUL + b"{}"
    yield "deep_schema", nested(300, b'{"items":', b"}", b"{}") + NUL + b"[]"
    yield "deep_const", dumps({"const": 1})[:-2] + nested(300) + b"}" + NUL + b"[]"
    yield "deep_document_128", b'{"uniqueItems":true}' + NUL + nested(128)
    yield "deep_document_129", b'{"uniqueItems":true}' + NUL + nested(129)

    # Formats, on strings and on other types.
    formats = ["date", "time", "date-time", "email", "hostname", "ipv4", "ipv6", "uri",
               "uri-reference", "iri", "iri-reference", "uuid", "json-pointer",
               "relative-json-pointer", "regex", "unknown-format"]
    yield seed("formats", {"properties": {f: {"format": f} for f in formats}}, {
        "date": "2023-02-29", "time": "23:59:60Z", "date-time": "2023-01-01T00:00:00.5+01:00",
        "email": "\"a b\"@example.com", "hostname": "-x.example", "ipv4": "01.2.3.4",
        "ipv6": "::ffff:1.2.3.4", "uri": "http://[::1]:80/a?b#c", "uri-reference": "//a",
        "iri": "http://\u00e9.example/", "iri-reference": "#\u00e9",
        "uuid": "6F1C8F9E-8A43-4C1E-9A6D-2B5B0E4D7C11", "json-pointer": "/a~2",
        "relative-json-pointer": "0#", "regex": "(", "unknown-format": "x"})
    yield seed("format_not_string", {"format": "date-time"}, 12)
    yield seed("format_bad_operand", {"format": 12}, "x")

    # Applicators and the other keywords.
    yield seed("applicators", {
        "type": ["object", "null"], "required": ["a", "b"], "minProperties": 1,
        "maxProperties": 3, "additionalProperties": {"type": "integer"},
        "propertyNames": {"maxLength": 3},
        "dependencies": {"a": ["c"], "b": {"required": ["d"]}},
        "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                       "b": {"oneOf": [{"minimum": 0}, {"maximum": 10}]},
                       "c": {"not": {"const": {"x": [1, 2]}}},
                       "d": {"if": {"type": "string"}, "then": {"minLength": 2},
                             "else": {"enum": [1, "1", None, [1], {"a": 1}]}}}},
        {"a": 1.5, "b": 5, "c": {"x": [1, 2]}, "d": "x", "long": 1})
    yield seed("arrays", {"type": "array", "items": [{"type": "string"}, {"type": "number"}],
                          "additionalItems": False, "minItems": 1, "maxItems": 3,
                          "uniqueItems": True, "contains": {"const": 2}},
               [["x"], 1, {"a": 1}, {"a": 1.0}])
    yield seed("false_subschemas", {"properties": {"a": False}, "items": False,
                                    "additionalProperties": False}, {"a": 1, "b": 2})

    # YAML schemas ("---" first): the demo schema, tags, anchors, and the billion laughs.
    yield "yaml_schema", b"---\n" + (
        b"type: object\nrequired: [user_id]\nproperties:\n"
        b"  user_id: {type: string, pattern: '^u'}\n  ts: {type: integer, minimum: 0}\n"
        b"  flag: {enum: [yes, no, true, ~, 0x1F, 1e3, .inf]}\n") + NUL + dumps(USER_EVENT)
    yield "yaml_anchors", b"---\ndefinitions:\n  id: &id {type: string, minLength: 1}\n" \
        b"properties:\n  a: *id\n  b: *id\n  c: !!str 12\n" + NUL + b'{"a":"","b":1}'
    yield "yaml_bad", b"---\nproperties: {a: [}\n" + NUL + b"{}"
    yield "yaml_complex_key", b"---\n? [a, b]\n: c\n" + NUL + b"{}"
    yield "yaml_duplicate_key", b"---\ntype: string\ntype: integer\n" + NUL + b"1"
    yield "yaml_nan", b"---\nminimum: .nan\n" + NUL + b"1"
    yield "yaml_billion_laughs", b"---\n" + yaml_bomb().encode() + b"type: object\n" + \
        NUL + b"{}"


# --- config_fuzz ----------------------------------------------------------------------------

README_KPIPE = b"""kafka:
  bootstrap: ${KPIPE_BOOTSTRAP:-embedded}
  embedded: {brokers: 1, partitions: 4}
  properties: {security.protocol: SASL_SSL, sasl.password: "${SECRET}"}
  consumer_properties: {session.timeout.ms: "45000"}
  producer_properties: {linger.ms: 5}
http: {listen: 127.0.0.1:9464, enabled: true}
pipelines: pipelines/
stores:
  ids: {type: redis, url: "redis://user:pw@[::1]:6379/0", ttl: 7d, timeout: 2s, prefix: "k:"}
  local: {type: lmdb, path: /var/lib/kpipe/dedup, ttl: 7d, map_size: 1GiB}
  scratch: {type: memory, ttl: 1d, max_entries: 1000000}
log: {format: text, level: info}
"""

README_PIPELINE = b"""name: user-events
input: {topic: user-events, group: user-event-processor, retention: 7d}
key: /user_id
ordering: key
concurrency: 64
max_pending: 2048
revoke_timeout: 10s
schema: ../schemas/user-event.json
schema_evolution: growth_only
dedup: {id: /msg_id, store: ids, on_duplicate: audit}
output: {topic: users, key: /user_id, partitioner: murmur2_random}
errors:
  topic: user-events.errors
  audit_topic: user-events.audit
  retry: {initial: 100ms, max: 30s, multiplier: 2, jitter: 0.2}
  max_attempts: 0
max_message_bytes: 1000000
"""

HTTP_PIPELINE = b"""name: to-http
input: {topic: in, group: g}
key: /id
ordering: none
concurrency: 8
schema: {type_field: /type, types: {a: ../schemas/payments/authorized.json,
         b: ../schemas/payments/refunded.json}, unknown_type: pass}
output:
  http:
    url: https://example.com/hook
    method: PUT
    headers: {Authorization: "Bearer ${SECRET}"}
    timeout: 5s
    connections: 16
    retry_statuses: [408, 429, 503]
    ca_file: ../schemas/user-event.json
"""


def config_seeds():
    kpipe = read("config/kpipe.yaml")
    yield "demo_user_events", kpipe + NUL + read("config/pipelines/user-events.yaml")
    yield "demo_payments", kpipe + NUL + read("config/pipelines/payments.yaml")
    yield "demo_kpipe_only", kpipe
    yield "readme", README_KPIPE + NUL + README_PIPELINE
    yield "http_output", README_KPIPE + NUL + HTTP_PIPELINE
    yield "readme_errors", b"""kafka:
  bootstrap: ${NOPE}
  propertys: {}
pipelines: pipelines/
stores: {ids: {type: memcached}, x: {type: memory, url: "redis://h"}}
""" + NUL + b"""name: a b
input: {topc: x}
key: user_id
schema: ../schemas/missing.json
ordering: partition
concurrency: 4
dedup: {id: "~2", store: idz}
errors: {retry: {initial: 1m, max: 1s, multiplier: 0.5, jitter: 2}}
"""
    yield "interpolation", b"""kafka:
  bootstrap: "${EMPTY:-localhost:9092}"
  properties: {a: "$$literal", b: "${SECRET}", c: "${MULTILINE}", d: "${UNTERMINATED",
               e: "${1BAD}", f: "${KPIPE_HTTP_LISTEN:-x}${EMPTY}$"}
http: {listen: "${KPIPE_HTTP_LISTEN}"}
log: {format: "${KPIPE_LOG_FORMAT}", level: "${NOPE:-debug}"}
""" + NUL + README_PIPELINE
    yield "values", b"""http: {listen: "[::1]:65536", enabled: yes}
kafka: {embedded: {brokers: 0, partitions: 99999999999999999999}}
stores:
  a: {type: memory, ttl: 9223372036854775807d, max_entries: -1}
  b: {type: lmdb, path: "", map_size: 1KiB}
  c: {type: redis, url: "redis://:pw@host:0/x"}
""" + NUL + b"""name: n
input: {topic: t, group: g, retention: 0s}
key: ""
concurrency: 100001
max_pending: 1
revoke_timeout: 1.5s
output: {topic: o, partitioner: fnv1a, http: {url: "ftp://x"}}
errors: {max_attempts: 4294967296, retry: {multiplier: inf, jitter: nan}}
max_message_bytes: 1e400
"""
    yield "duplicate_keys", b"kafka: {}\nkafka: {}\npipelines: pipelines/\n" + NUL + \
        b"name: a\nname: b\ninput: {topic: t, group: g, topic: u}\nkey: /k\noutput: {topic: o}\n"
    yield "two_documents", b"kafka: {}\n---\nkafka: {}\n" + NUL + b"---\nname: a\n...\n---\n"
    yield "not_maps", b"[1, 2]" + NUL + b"just a string"
    yield "empty_files", NUL
    yield "bom", b"\xef\xbb\xbfpipelines: pipelines/\n" + NUL + b"\xef\xbb\xbf" + README_PIPELINE
    yield "invalid_utf8", b"kafka: {bootstrap: \"\xff\xfe\"}\n" + NUL + \
        README_PIPELINE.replace(b"users", b"us\xc3\x28rs")
    yield "tabs_and_syntax", b"kafka:\n\tbootstrap: x\n" + NUL + b"name: [a\n"
    yield "tags_and_keys", b"kafka: !!map {bootstrap: !!binary aGVsbG8=}\n? [complex]\n: key\n" \
        b"<<: {log: {level: debug}}\n" + NUL + b"&a name: *a\ninput: &in {topic: t, group: g}\n" \
        b"key: /k\noutput: *in\n"
    yield "pipelines_dir_is_config_dir", b"pipelines: .\n" + NUL + README_PIPELINE
    yield "pipelines_dir_missing", b"pipelines: nowhere/\n"
    yield "deep_nesting", b"kafka: " + nested(3000) + b"\n" + NUL + b"name: " + \
        nested(3000, b"{a: ", b"}") + b"\n"
    bomb = yaml_bomb(indent="  ")
    yield "billion_laughs_kafka", b"x:\n" + bomb.encode() + \
        b"kafka: {properties: {a: *l8, b: *l8}}\nstores: {s: *l8}\nlog: *l8\n" + NUL + \
        README_PIPELINE
    yield "billion_laughs_pipeline", kpipe + NUL + b"x:\n" + bomb.encode() + \
        b"name: *l8\ninput: {topic: *l8, group: *l8}\nkey: *l8\ndedup: *l8\n" \
        b"output: {topic: o, http: {headers: *l8, retry_statuses: *l8}}\n" \
        b"schema: {type_field: /t, types: *l8}\n"
    yield "alias_fan_out_maps", b"base: &m {bootstrap: x, properties: &p {a: b}}\n" \
        b"kafka: *m\nstores: {a: {type: memory}, b: *p}\n" + NUL + \
        b"i: &i {topic: t, group: g}\nname: n\ninput: *i\nkey: /k\noutput: *i\nerrors: *i\n"


# --- headers_fuzz ---------------------------------------------------------------------------

def headers(selector, regex=b"", since=b"", until=b"", items=()):
    return bytes([selector]) + NUL.join([regex, since, until] + list(items))


ERROR_HEADERS = [
    b"traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    b"kpipe.error.stage=schema",
    b'kpipe.error.reason=at /ts: "yesterday" is not of type "integer"',
    b"kpipe.error.class=non_blocking",
    b"kpipe.origin.topic=user-events",
    b"kpipe.origin.partition=3",
    b"kpipe.origin.offset=42",
    b"kpipe.origin.timestamp=1700000000000",
    b"kpipe.pipeline=user-events",
]


def headers_seeds():
    yield "error_record", headers(0, items=ERROR_HEADERS)
    for choice in range(1, 7):
        yield f"error_record_reason_{choice}", headers(choice, items=ERROR_HEADERS)
    yield "since_until_rfc3339", headers(0x18, b"", b"2023-11-14T22:00:00Z",
                                         b"2023-11-14T23:00:00.5+01:00", ERROR_HEADERS)
    yield "since_until_durations", headers(0x18, b"", b"7d", b"250ms", ERROR_HEADERS)
    yield "since_after_until", headers(0x18, b"", b"2h", b"3h", ERROR_HEADERS)
    yield "times_edge", headers(0x18, b"", b"0000-01-01T00:00:00Z",
                                b"9999-12-31T23:59:60.999999-23:59", ERROR_HEADERS)
    yield "times_bad", headers(0x18, b"", b"2026-02-29T00:00:00Z", b"2026-11-26T10:00:00+24:00",
                               ERROR_HEADERS)
    yield "times_huge_duration", headers(0x18, b"", b"9223372036854775807ms",
                                         b"106751991167d", ERROR_HEADERS)
    yield "fuzzed_regex", headers(7, b"(a|b)*c|[^x]+$", items=ERROR_HEADERS)
    yield "fuzzed_regex_invalid", headers(7, b"a)(b", items=ERROR_HEADERS)
    yield "fuzzed_regex_backreference", headers(7, b"(a)\\1", items=ERROR_HEADERS)
    yield "long_reason", headers(2, items=[b"kpipe.error.stage=decode",
                                           b"kpipe.error.reason=" + b"at /ts: " * 600])
    yield "null_values", headers(0, items=[b"kpipe.error.stage", b"kpipe.error.reason",
                                           b"kpipe.origin.timestamp", b"x"])
    yield "empty_stage", headers(0, items=[b"kpipe.error.stage=", b"kpipe.error.reason=r"])
    yield "value_omitted", headers(0, items=ERROR_HEADERS + [b"kpipe.error.value_omitted=2000000"])
    yield "last_wins", headers(0x08, b"", b"1h", items=ERROR_HEADERS + [
        b"kpipe.error.stage=key", b"kpipe.origin.timestamp=-1", b"kpipe.origin.timestamp=17e11"])
    yield "timestamps_garbled", headers(0x10, b"", b"", b"1h", [
        b"kpipe.error.stage=id", b"kpipe.error.reason=r",
        b"kpipe.origin.timestamp=99999999999999999999"])
    yield "not_error_record", headers(0, items=[b"traceparent=x", b"kpipe.audit.stage=dedup"])
    yield "binary_names", headers(0, items=[b"\xff\xfe=\x00", b"kpipe.=x", b"=", b"kpipe.error.stage"
                                            b"\x7f=\x1b[31m", b"kpipe.error.reason=\n\r\t\""])
    yield "replay_of_replay", headers(0, items=ERROR_HEADERS + [b"kpipe.replay.origin=e:0:1"])
    yield "args", headers(0x20, b"config/kpipe.yaml", b"--from=user-events.errors", b"--to",
                          [b"user-events", b"--reason", b"schema|key", b"--since",
                           b"2026-11-26T10:00:00.5+01:00", b"--until=1h", b"--dry-run",
                           b"--bootstrap=127.0.0.1:9092"])
    yield "args_bad", headers(0x20, b"--from", b"", b"--from=x", [b"--dry-run=1", b"-", b"a", b"b",
                                                                  b"--reason=(a)\\1"])


# --- dictionaries ---------------------------------------------------------------------------

# Raw bytes of each entry; dict_line() escapes them for libFuzzer (\\, \" and \xNN only).
DICTS = {
    "schema_fuzz": [
        b"\0", b"---", b'"type"', b'"object"', b'"array"', b'"string"', b'"integer"',
        b'"number"', b'"boolean"', b'"null"', b'"properties"', b'"required"',
        b'"additionalProperties"', b'"patternProperties"', b'"propertyNames"', b'"items"',
        b'"additionalItems"', b'"contains"', b'"enum"', b'"const"', b'"default"', b'"pattern"',
        b'"format"', b'"minimum"', b'"maximum"', b'"exclusiveMinimum"', b'"exclusiveMaximum"',
        b'"multipleOf"', b'"minLength"', b'"maxLength"', b'"minItems"', b'"maxItems"',
        b'"uniqueItems"', b'"minProperties"', b'"maxProperties"', b'"dependencies"', b'"allOf"',
        b'"anyOf"', b'"oneOf"', b'"not"', b'"if"', b'"then"', b'"else"', b'"$ref"', b'"$id"',
        b'"definitions"', b'"#/definitions/"', b'"#"', b'"schemas/user-event.json"',
        b'"schemas/payments/authorized.json"', b'"date-time"', b'"email"', b'"uuid"', b'"ipv6"',
        b'"uri"', b'"hostname"', b'"json-pointer"', b"true", b"false", b"null", b"1e308",
        b"-0.0", b"18446744073709551616", rb'"\u0000"', b"\xef\xbb\xbf", b"\xff", b"&a ",
        b"*a", b"!!str ", b"(a+)+", rb"\\1", b"{1000}",
    ],
    "config_fuzz": [
        b"\0", b"kafka:", b"bootstrap:", b"embedded:", b"brokers:", b"partitions:",
        b"properties:", b"consumer_properties:", b"producer_properties:", b"http:", b"listen:",
        b"enabled:", b"pipelines:", b"stores:", b"type:", b"memory", b"redis", b"lmdb", b"ttl:",
        b"reservation_ttl:", b"max_entries:", b"url:", b"redis://", b"timeout:", b"prefix:",
        b"path:", b"map_size:", b"log:", b"format:", b"level:", b"name:", b"input:", b"topic:",
        b"group:", b"retention:", b"key:", b"ordering:", b"partition", b"none", b"concurrency:",
        b"max_pending:", b"revoke_timeout:", b"schema:", b"type_field:", b"types:",
        b"unknown_type:", b"pass", b"schema_evolution:", b"growth_only", b"any", b"dedup:",
        b"id:", b"store:", b"on_duplicate:", b"audit", b"drop", b"output:", b"partitioner:",
        b"method:", b"headers:", b"connections:", b"retry_statuses:", b"ca_file:", b"errors:",
        b"audit_topic:", b"retry:", b"initial:", b"max:", b"multiplier:", b"jitter:",
        b"max_attempts:", b"max_message_bytes:", b"../schemas/user-event.json", b"${",
        b"${SECRET}", b"${EMPTY:-", b":-", b"$$", b"}", b"ms", b"7d", b"KiB", b"MiB", b"GiB",
        b"&a ", b"*a", b"<<: ", b"? ", b"!!str ", b"---", b"...", b"{", b"[", b"]", b": ",
        b"\n  ", b"- ",
    ],
    "message_fuzz": [
        b'"msg_id"', b'"user_id"', b'"account_id"', b'"type"', b'"ts"', b'"data"', b'"email"',
        b'"plan"', b'"age"', b'"amount"', b'"currency"', b'"refund_of"', b'"user.signed_up"',
        b'"user.updated"', b'"user.deleted"', b'"payment.authorized"', b'"payment.refunded"',
        b'"6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11"', b'"EUR"', b'"pro"', b"1700000000000",
        b"18446744073709551616", b"1e400", b"-0", b"1.0", b"true", b"null", rb'"\u0000"',
        rb'"\ud800"', b"\xef\xbb\xbf", b"\xc3\x28", b"[[[[[[[[", b"]]]]]]]]",
    ],
    "headers_fuzz": [
        b"\0", b"kpipe.error.stage=", b"kpipe.error.reason=", b"kpipe.error.class=",
        b"kpipe.error.value_omitted=", b"kpipe.origin.topic=", b"kpipe.origin.partition=",
        b"kpipe.origin.offset=", b"kpipe.origin.timestamp=", b"kpipe.pipeline=",
        b"kpipe.replay.origin=", b"kpipe.audit.stage=", b"traceparent=", b"schema", b"decode",
        b"non_blocking", b"-1", b"1700000000000", b"2026-11-26T10:00:00Z", b".5", b"+01:00",
        b"Z", b"7d", b"250ms", b"--from=", b"--to=", b"--reason=", b"--since=", b"--until=",
        b"--dry-run", b"--bootstrap=",
    ],
}


def dict_line(entry):
    out = ""
    for byte in entry:
        if byte in (0x5C, 0x22):
            out += "\\" + chr(byte)
        elif 0x20 <= byte < 0x7F:
            out += chr(byte)
        else:
            out += "\\x%02X" % byte
    return '"%s"' % out


def main():
    for target, seeds in (("schema_fuzz", schema_seeds()), ("config_fuzz", config_seeds()),
                          ("message_fuzz", ((f"{n}", v) for n, v in events())),
                          ("headers_fuzz", headers_seeds())):
        for name, data in seeds:
            write(target, name, data)
    write("message_fuzz", "tombstone", b"")
    for target, entries in DICTS.items():
        lines = [f"# libFuzzer dictionary of {target} (written by make_seeds.py)"]
        lines += [dict_line(entry) for entry in entries]
        (HERE / f"{target}.dict").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
