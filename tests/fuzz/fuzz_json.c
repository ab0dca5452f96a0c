/* fuzz_json.c - libFuzzer target for the JSON import and export (proto/json.h; built with
 * clang by tests/fuzz/CMakeLists.txt, run by the ctest `fuzz_json`).
 *
 * Input: two control bytes, then the JSON text (passed with its length, never
 * NUL-terminated). Byte 0 mod 6 picks the reader: value, command, snapshot, batch, sync,
 * result. Byte 1 is the value reader's max_depth (255 stands for 3000, past
 * FO_JSON_DEPTH_CAP, jansson's own bound) and decides where the text is cut and where a NUL is put: every input is also read
 * truncated and with one byte replaced by NUL. Invariants checked, each aborting so that
 * libFuzzer keeps the input:
 *   - a reader returns 0 or FO_EPROTO / FO_ELIMIT / FO_EINVAL (typed readers only), with
 *     err->code == rc and a non-empty err->msg (FO_ENOMEM cannot happen at these sizes);
 *   - a strict RFC 8259 parser written here (the oracle: own UTF-8 check, own escapes,
 *     own number grammar) agrees with fo_json_read_value: text it rejects is refused; text
 *     it accepts but json.h documents refusing (duplicate key, NUL in a key, lone surrogate
 *     escape, a number beyond double range) is FO_EPROTO; text nested deeper than max_depth
 *     is FO_ELIMIT with err->pos at the first container too deep; anything else succeeds
 *     with the value the oracle built (same tree, same key order, same types: INT for
 *     int64, UINT above, FLOAT otherwise, -0.0 kept; checked by writing both);
 *   - what was accepted, written with fo_json_write_* and read again, is equal, and the
 *     second write is byte-identical to the first (the compact form is canonical); the
 *     pretty, key-sorted form reads back equal too; a typed struct's pretty form (the
 *     builder) and its compact form (written directly) read back to the same struct;
 *   - a typed reader fails exactly when the value reader (at FO_JSON_MAX_DEPTH) fails, with
 *     the same code, else agrees with fo_json_*_from_value on that value;
 *   - what was accepted, encoded with the wire codec (value, batch; a snapshot in a snap
 *     message, a result and a sync in an ack) decodes back equal (wire_cmp.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "proto/value.h"
#include "proto/wire.h"
#include "tests/fuzz/wire_cmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { M_VALUE, M_COMMAND, M_SNAPSHOT, M_BATCH, M_SYNC, M_RESULT, M_COUNT };

#define JANSSON_MAX_DEPTH 2048

static void die(const char *what, const fo_err_info *err)
{
    fprintf(stderr, "fuzz_json: %s", what);
    if (err)
        fprintf(stderr, " (code %d at %zu, '%s': %s)", err->code, err->pos, err->path, err->msg);
    fputc('\n', stderr);
    abort();
}

/* ---- the oracle: a strict RFC 8259 parser that builds the expected value ------------- */

typedef struct oracle {
    const unsigned char *s;
    size_t n, i;
    fo_arena *a;
    uint32_t max_depth, depth, deepest;
    size_t deep_pos; /* the first container opened past max_depth, SIZE_MAX if none */
    bool refuse;     /* valid JSON that json.h documents refusing */
    char *buf;       /* a decoded string */
    size_t len, cap;
} oracle;

static void skip_ws(oracle *o)
{
    while (o->i < o->n &&
           (o->s[o->i] == ' ' || o->s[o->i] == '\t' || o->s[o->i] == '\n' || o->s[o->i] == '\r'))
        o->i++;
}

static void put_byte(oracle *o, unsigned char c)
{
    if (o->len == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        if (!(o->buf = realloc(o->buf, o->cap)))
            die("out of memory", NULL);
    }
    o->buf[o->len++] = (char)c;
}

static void put_cp(oracle *o, uint32_t cp)
{
    if (cp < 0x80) {
        put_byte(o, (unsigned char)cp);
    } else if (cp < 0x800) {
        put_byte(o, (unsigned char)(0xc0 | cp >> 6));
        put_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        put_byte(o, (unsigned char)(0xe0 | cp >> 12));
        put_byte(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
        put_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
    } else {
        put_byte(o, (unsigned char)(0xf0 | cp >> 18));
        put_byte(o, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
        put_byte(o, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
        put_byte(o, (unsigned char)(0x80 | (cp & 0x3f)));
    }
}

static bool hex4(oracle *o, uint32_t *out)
{
    uint32_t v = 0;

    if (o->n - o->i < 4)
        return false;
    for (int k = 0; k < 4; k++) {
        unsigned char c = o->s[o->i++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return false;
    }
    *out = v;
    return true;
}

/* One raw UTF-8 sequence (RFC 3629) copied into the buffer; false when ill-formed. */
static bool raw_utf8(oracle *o)
{
    unsigned char c = o->s[o->i];
    uint32_t cp, min;
    int more;

    if (c < 0x80)
        more = 0, cp = c, min = 0;
    else if ((c & 0xe0) == 0xc0)
        more = 1, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        more = 2, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        more = 3, cp = c & 0x07, min = 0x10000;
    else
        return false;
    if (o->n - o->i <= (size_t)more)
        return false;
    for (int k = 1; k <= more; k++) {
        unsigned char d = o->s[o->i + k];
        if ((d & 0xc0) != 0x80)
            return false;
        cp = cp << 6 | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return false;
    for (int k = 0; k <= more; k++)
        put_byte(o, o->s[o->i++]);
    return true;
}

/* A string at o->i (the opening quote), decoded into o->buf[0, o->len). */
static bool string(oracle *o)
{
    o->len = 0;
    o->i++;
    for (;;) {
        unsigned char c;
        uint32_t cp, lo;

        if (o->i >= o->n)
            return false;
        c = o->s[o->i];
        if (c == '"') {
            o->i++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\') {
            if (!raw_utf8(o))
                return false;
            continue;
        }
        if (++o->i >= o->n)
            return false;
        switch (o->s[o->i++]) {
        case '"': put_byte(o, '"'); break;
        case '\\': put_byte(o, '\\'); break;
        case '/': put_byte(o, '/'); break;
        case 'b': put_byte(o, '\b'); break;
        case 'f': put_byte(o, '\f'); break;
        case 'n': put_byte(o, '\n'); break;
        case 'r': put_byte(o, '\r'); break;
        case 't': put_byte(o, '\t'); break;
        case 'u':
            if (!hex4(o, &cp))
                return false;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                o->refuse = true; /* a lone low surrogate: valid JSON, refused by jansson */
                cp = 0xfffd;
            } else if (cp >= 0xd800 && cp <= 0xdbff) {
                if (o->n - o->i >= 6 && o->s[o->i] == '\\' && o->s[o->i + 1] == 'u') {
                    size_t at = o->i;
                    o->i += 2;
                    if (!hex4(o, &lo))
                        return false;
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    } else {
                        o->refuse = true;
                        o->i = at;
                        cp = 0xfffd;
                    }
                } else {
                    o->refuse = true;
                    cp = 0xfffd;
                }
            }
            put_cp(o, cp);
            break;
        default: return false;
        }
    }
}

static bool digits(oracle *o)
{
    size_t start = o->i;

    while (o->i < o->n && o->s[o->i] >= '0' && o->s[o->i] <= '9')
        o->i++;
    return o->i > start;
}

static bool number(oracle *o, fo_value *out)
{
    size_t start = o->i;
    bool integer = true;
    char *tmp, *end;

    if (o->s[o->i] == '-')
        o->i++;
    if (o->i < o->n && o->s[o->i] == '0')
        o->i++;
    else if (!digits(o))
        return false;
    if (o->i < o->n && o->s[o->i] == '.') {
        o->i++;
        integer = false;
        if (!digits(o))
            return false;
    }
    if (o->i < o->n && (o->s[o->i] == 'e' || o->s[o->i] == 'E')) {
        o->i++;
        integer = false;
        if (o->i < o->n && (o->s[o->i] == '+' || o->s[o->i] == '-'))
            o->i++;
        if (!digits(o))
            return false;
    }
    if (!(tmp = malloc(o->i - start + 1)))
        die("out of memory", NULL);
    memcpy(tmp, o->s + start, o->i - start);
    tmp[o->i - start] = '\0';
    if (integer) {
        long long ll;
        unsigned long long ull;
        errno = 0;
        ll = strtoll(tmp, &end, 10);
        if (errno == 0) {
            *out = fo_value_int(ll);
            free(tmp);
            return true;
        }
        errno = 0;
        ull = tmp[0] == '-' ? 0 : strtoull(tmp, &end, 10);
        if (tmp[0] != '-' && errno == 0) {
            *out = fo_value_uint(ull);
            free(tmp);
            return true;
        }
    }
    *out = fo_value_float(strtod(tmp, &end));
    free(tmp);
    if (!isfinite(out->h.as.f))
        o->refuse = true;
    return true;
}

static bool literal(oracle *o, const char *word, fo_value v, fo_value *out)
{
    size_t l = strlen(word);

    if (o->n - o->i < l || memcmp(o->s + o->i, word, l) != 0)
        return false;
    o->i += l;
    *out = v;
    return true;
}

static bool value(oracle *o, fo_value *out);

/* A container at o->i: counts depth, recurses for its items. */
static bool container(oracle *o, fo_value *out)
{
    bool ok = true, obj = o->s[o->i] == '{';
    unsigned char close = obj ? '}' : ']';
    uint32_t n = 0;

    if (++o->depth > o->max_depth && o->deep_pos == SIZE_MAX)
        o->deep_pos = o->i;
    if (o->depth > o->deepest)
        o->deepest = o->depth;
    if (o->depth > JANSSON_MAX_DEPTH + 10) /* refused by both; keeps our stack bounded */
        return false;
    o->i++;
    *out = obj ? fo_value_map(o->a, 0, &ok) : fo_value_array(o->a, 0, &ok);
    skip_ws(o);
    if (o->i < o->n && o->s[o->i] == close) {
        o->i++;
        o->depth--;
        return true;
    }
    for (;;) {
        fo_value v;
        fo_key k = FO_KEY_NONE;

        skip_ws(o);
        if (obj) {
            if (o->i >= o->n || o->s[o->i] != '"' || !string(o))
                return false;
            if (o->len && memchr(o->buf, '\0', o->len))
                o->refuse = true;
            if (!(k = fo_key_new(o->a, o->buf, o->len)))
                die("out of memory", NULL);
            if (fo_map_get(fo_value_as_map(out), k))
                o->refuse = true;
            skip_ws(o);
            if (o->i >= o->n || o->s[o->i++] != ':')
                return false;
            skip_ws(o);
        }
        if (!value(o, &v))
            return false;
        if (obj) {
            if (fo_map_set(fo_value_as_map(out), o->a, k, &v, NULL))
                die("out of memory", NULL);
        } else {
            /* Arrays are built by copying: the oracle stays simple, inputs are small. */
            fo_value grown = fo_value_array(o->a, n + 1, &ok);
            if (!ok)
                die("out of memory", NULL);
            if (n)
                memcpy(grown.h.as.items, out->h.as.items, n * sizeof(fo_value));
            grown.h.as.items[n++] = v;
            *out = grown;
        }
        skip_ws(o);
        if (o->i >= o->n)
            return false;
        if (o->s[o->i] == close) {
            o->i++;
            o->depth--;
            return true;
        }
        if (o->s[o->i++] != ',')
            return false;
    }
}

static bool value(oracle *o, fo_value *out)
{
    bool ok = true;

    if (o->i >= o->n)
        return false;
    switch (o->s[o->i]) {
    case '{':
    case '[': return container(o, out);
    case '"':
        if (!string(o))
            return false;
        *out = fo_value_str(o->a, o->buf, o->len, &ok);
        if (!ok)
            die("out of memory", NULL);
        return true;
    case 't': return literal(o, "true", fo_value_bool(true), out);
    case 'f': return literal(o, "false", fo_value_bool(false), out);
    case 'n': return literal(o, "null", fo_value_null(), out);
    default:
        if (o->s[o->i] == '-' || (o->s[o->i] >= '0' && o->s[o->i] <= '9'))
            return number(o, out);
        return false;
    }
}

/* Parses the whole text; false for anything RFC 8259 rejects. */
static bool oracle_parse(oracle *o, const unsigned char *s, size_t n, uint32_t max_depth,
                         fo_arena *a, fo_value *out)
{
    bool ok;

    memset(o, 0, sizeof(*o));
    o->s = s;
    o->n = n;
    o->a = a;
    o->max_depth = max_depth;
    o->deep_pos = SIZE_MAX;
    o->cap = 64; /* never NULL, even for "" */
    if (!(o->buf = malloc(o->cap)))
        die("out of memory", NULL);
    skip_ws(o);
    ok = value(o, out);
    if (ok) {
        skip_ws(o);
        ok = o->i == n;
    }
    free(o->buf);
    o->buf = NULL;
    return ok;
}

/* ---- round trips --------------------------------------------------------------------- */

static void check_err(int rc, const fo_err_info *err, size_t len, bool typed)
{
    if (rc == FO_ENOMEM)
        die("out of memory on a small input", err);
    if (rc != FO_EPROTO && rc != FO_ELIMIT && !(typed && rc == FO_EINVAL))
        die("an unexpected return code", err);
    if (err->code != rc || err->msg[0] == '\0')
        die("an error without its code or message", err);
    if (rc != FO_EINVAL && (err->path[0] != '\0' || err->pos > len))
        die("a syntax error with a field path or a position past the text", err);
}

static void text_of(const fo_value *v, int flags, fo_buf *out)
{
    out->len = 0;
    if (fo_json_write_value(v, flags, out) != 0)
        die("writing an imported value failed", NULL);
}

static bool same_text(const fo_buf *x, const fo_buf *y)
{
    return x->len == y->len && memcmp(fo_buf_data(x), fo_buf_data(y), x->len) == 0;
}

static void wire_limits(fo_wire_limits *l)
{
    fo_wire_limits_default(l);
    l->max_frame = (size_t)1 << 30;
    l->max_path = l->max_str = l->max_elems = l->max_total = UINT32_MAX;
}

/* The wire codec's depth bound counts a frame's own map; values beyond it are skipped. */
static void check_wire_value(const fo_value *v, fo_arena *a)
{
    fo_wire_limits l;
    fo_buf b;
    fo_value back;
    fo_err_info err;
    int rc;

    wire_limits(&l);
    fo_buf_init(&b, 0);
    if (fo_wire_encode_value(v, &b) != 0)
        die("wire encode of an imported value failed", NULL);
    rc = fo_wire_decode_value(fo_buf_data(&b), b.len, &l, a, &back, &err);
    if (rc == FO_ELIMIT && fo_value_depth(v) >= l.max_depth)
        rc = 0, back = *v;
    if (rc != 0)
        die("wire decode of an imported value failed", &err);
    if (!wc_value_eq(v, &back))
        die("an imported value changed through the wire codec", NULL);
    fo_buf_destroy(&b);
}

static void check_value(const unsigned char *s, size_t n, uint32_t max_depth, fo_arena *a)
{
    oracle o;
    fo_value want, got, back;
    fo_err_info err;
    fo_buf t1, t2;
    uint32_t limit = max_depth < FO_JSON_DEPTH_CAP ? max_depth : FO_JSON_DEPTH_CAP;
    bool valid = oracle_parse(&o, s, n, limit, a, &want);
    int rc = fo_json_read_value((const char *)s, n, max_depth, a, &got, &err);

    if (rc != 0) {
        check_err(rc, &err, n, false);
        if (rc == FO_ELIMIT && o.deepest <= FO_JSON_DEPTH_CAP &&
            (!valid || o.refuse || o.deep_pos == SIZE_MAX))
            die("FO_ELIMIT for text within the depth limits", &err);
        if (valid && !o.refuse && rc != FO_ELIMIT)
            die("valid JSON refused", &err);
        if (valid && !o.refuse && err.pos != o.deep_pos)
            die("nesting refused at the wrong place", &err);
        return;
    }
    if (!valid)
        die("accepted text that a strict JSON parser rejects", NULL);
    if (o.refuse)
        die("accepted a duplicate key, a NUL in a key, a lone surrogate or a huge number", NULL);
    if (o.deep_pos != SIZE_MAX || fo_value_depth(&got) > max_depth)
        die("accepted nesting past max_depth", NULL);

    fo_buf_init(&t1, 0);
    fo_buf_init(&t2, 0);
    if (!fo_value_eq(&want, &got))
        die("the imported value differs from the oracle's", NULL);
    text_of(&want, 0, &t1);
    text_of(&got, 0, &t2);
    if (!same_text(&t1, &t2))
        die("the imported value writes differently from the oracle's (order, type, -0)", NULL);

    /* Compact: read back equal, and the second write is the same text. */
    if (fo_json_read_value(fo_buf_data(&t1), t1.len, max_depth, a, &back, &err) != 0)
        die("our own compact output was refused", &err);
    text_of(&back, 0, &t2);
    if (!fo_value_eq(&got, &back) || !same_text(&t1, &t2))
        die("the compact form is not a fixed point", NULL);
    /* Pretty and sorted: reads back equal (maps compare unordered). */
    text_of(&got, FO_JSON_PRETTY | FO_JSON_SORT_KEYS, &t1);
    if (fo_json_read_value(fo_buf_data(&t1), t1.len, max_depth, a, &back, &err) != 0)
        die("our own pretty output was refused", &err);
    if (!fo_value_eq(&got, &back))
        die("the pretty sorted form reads back different", NULL);
    text_of(&back, FO_JSON_PRETTY | FO_JSON_SORT_KEYS, &t2);
    if (!same_text(&t1, &t2))
        die("the sorted form is not a fixed point", NULL);
    fo_buf_destroy(&t1);
    fo_buf_destroy(&t2);
    check_wire_value(&got, a);
}

/* One typed kind: read, from_value, write, equality and the wire message it travels in. */
typedef union typed {
    fo_command c;
    fo_snapshot s;
    fo_batch b;
    fo_sync y;
    fo_apply_result r;
} typed;

static int t_read(int m, const char *s, size_t n, fo_arena *a, typed *out, fo_err_info *err)
{
    switch (m) {
    case M_COMMAND: return fo_json_read_command(s, n, a, &out->c, err);
    case M_SNAPSHOT: return fo_json_read_snapshot(s, n, a, &out->s, err);
    case M_BATCH: return fo_json_read_batch(s, n, a, &out->b, err);
    case M_SYNC: return fo_json_read_sync(s, n, a, &out->y, err);
    default: return fo_json_read_result(s, n, a, &out->r, err);
    }
}

static int t_from(int m, const fo_value *v, fo_arena *a, typed *out, fo_err_info *err)
{
    switch (m) {
    case M_COMMAND: return fo_json_command_from_value(v, a, &out->c, err);
    case M_SNAPSHOT: return fo_json_snapshot_from_value(v, a, &out->s, err);
    case M_BATCH: return fo_json_batch_from_value(v, a, &out->b, err);
    case M_SYNC: return fo_json_sync_from_value(v, a, &out->y, err);
    default: return fo_json_result_from_value(v, a, &out->r, err);
    }
}

/* A sync is written inside a result (json.h has no writer of its own for it). */
static int t_write(int m, const typed *t, int flags, fo_buf *out)
{
    fo_apply_result r;

    out->len = 0;
    switch (m) {
    case M_COMMAND: return fo_json_write_command(&t->c, flags, out);
    case M_SNAPSHOT: return fo_json_write_snapshot(&t->s, flags, out);
    case M_BATCH: return fo_json_write_batch(&t->b, flags, out);
    case M_SYNC:
        memset(&r, 0, sizeof(r));
        r.sync = t->y;
        return fo_json_write_result(&r, flags, out);
    default: return fo_json_write_result(&t->r, flags, out);
    }
}

/* Reads text written by t_write back into a struct of kind m. */
static int t_reread(int m, const fo_buf *b, fo_arena *a, typed *out, fo_err_info *err)
{
    typed r;
    int rc;

    if (m != M_SYNC)
        return t_read(m, fo_buf_data(b), b->len, a, out, err);
    if ((rc = fo_json_read_result(fo_buf_data(b), b->len, a, &r.r, err)) == 0)
        out->y = r.r.sync;
    return rc;
}

static bool t_eq(int m, const typed *x, const typed *y)
{
    switch (m) {
    case M_COMMAND: return wc_command_eq(&x->c, &y->c);
    case M_SNAPSHOT: return wc_snapshot_eq(&x->s, &y->s);
    case M_BATCH: return wc_batch_eq(&x->b, &y->b);
    case M_SYNC: return wc_sync_eq(&x->y, &y->y);
    default: return wc_result_eq(&x->r, &y->r);
    }
}

/* Through the wire: a command and a batch as a batch, a snapshot in a snap message, a
 * result and a sync in an ack. */
static void check_wire_typed(int m, const typed *t, fo_arena *a)
{
    fo_wire_limits l;
    fo_buf b;
    fo_err_info err;
    fo_msg msg, back;
    fo_completion one;
    int rc;

    wire_limits(&l);
    fo_buf_init(&b, 0);
    memset(&msg, 0, sizeof(msg));
    msg.model = "m";
    msg.model_len = 1;
    msg.seq = 1;
    switch (m) {
    case M_COMMAND:
        memset(&one, 0, sizeof(one));
        one.command = t->c;
        msg.type = FO_MSG_PUSH;
        msg.batch.len = 1;
        msg.batch.items = &one;
        break;
    case M_BATCH:
        msg.type = FO_MSG_PUSH;
        msg.batch = t->b;
        break;
    case M_SNAPSHOT:
        msg.type = FO_MSG_SNAP;
        msg.snapshot = t->s;
        break;
    case M_SYNC:
        msg.type = FO_MSG_ACK;
        msg.result.sync = t->y;
        break;
    default: msg.type = FO_MSG_ACK; msg.result = t->r;
    }
    if (fo_wire_encode(&msg, &b) != 0)
        die("wire encode of an imported struct failed", NULL);
    rc = fo_wire_decode(fo_buf_data(&b), b.len, &l, a, &back, &err);
    if (rc == FO_ELIMIT && strstr(err.msg, "deep")) /* the wire's fixed depth bound */
        rc = 0, back = msg;
    if (rc != 0)
        die("wire decode of an imported struct failed", &err);
    if (!wc_msg_eq(&msg, &back))
        die("an imported struct changed through the wire codec", NULL);
    fo_buf_destroy(&b);
}

static void check_typed(int m, const unsigned char *s, size_t n, fo_arena *a)
{
    typed t, t2, t3;
    fo_value v;
    fo_err_info err, verr;
    fo_buf w1, w2;
    int rc = t_read(m, (const char *)s, n, a, &t, &err);
    int vrc = fo_json_read_value((const char *)s, n, FO_JSON_MAX_DEPTH, a, &v, &verr);

    if (vrc != 0) {
        if (rc != vrc)
            die("a typed reader and the value reader disagree on the text", &err);
        check_err(rc, &err, n, true);
        return;
    }
    if (rc != t_from(m, &v, a, &t2, &verr) || (rc && strcmp(err.path, verr.path) != 0))
        die("a typed reader and its from_value disagree", &err);
    if (rc != 0) {
        if (rc != FO_EINVAL)
            die("a typed reader failed on a value that parsed", &err);
        check_err(rc, &err, n, true);
        return;
    }
    if (!t_eq(m, &t, &t2))
        die("a typed reader and its from_value read different structs", NULL);

    fo_buf_init(&w1, 0);
    fo_buf_init(&w2, 0);
    if (t_write(m, &t, 0, &w1) != 0)
        die("writing an imported struct failed", NULL);
    if (t_reread(m, &w1, a, &t2, &err) != 0)
        die("our own typed output was refused", &err);
    if (!t_eq(m, &t, &t2))
        die("a typed struct changed in a round trip", NULL);
    if (t_write(m, &t2, 0, &w2) != 0 || !same_text(&w1, &w2))
        die("the typed compact form is not a fixed point", NULL);
    /* The pretty form goes through the builder (commands: not the direct compact writer). */
    if (t_write(m, &t, FO_JSON_PRETTY, &w2) != 0 || t_reread(m, &w2, a, &t3, &err) != 0)
        die("the typed pretty form was refused", &err);
    if (!t_eq(m, &t, &t3) || t_write(m, &t3, 0, &w2) != 0 || !same_text(&w1, &w2))
        die("the typed pretty form reads back different", NULL);
    fo_buf_destroy(&w1);
    fo_buf_destroy(&w2);
    check_wire_typed(m, &t, a);
}

static void check(int mode, const unsigned char *s, size_t n, uint32_t max_depth)
{
    fo_arena a;

    fo_arena_init(&a, 0);
    if (mode == M_VALUE)
        check_value(s, n, max_depth, &a);
    else
        check_typed(mode, s, n, &a);
    fo_arena_destroy(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int mode;
    uint32_t max_depth;
    size_t n, cut;
    unsigned char *copy;

    if (size < 2)
        return 0;
    mode = data[0] % M_COUNT;
    max_depth = data[1] == 255 ? 3000 : data[1];
    n = size - 2;
    /* Exact-size heap copies, so that ASan sees any read past the length. */
    cut = n * data[1] / 256;
    if (!(copy = malloc(n ? n : 1)))
        die("out of memory", NULL);
    memcpy(copy, data + 2, n);
    check(mode, copy, n, max_depth);
    if (n) {
        copy[cut] = '\0';
        check(mode, copy, n, max_depth);
        free(copy);
        if (!(copy = malloc(cut ? cut : 1)))
            die("out of memory", NULL);
        memcpy(copy, data + 2, cut);
        check(mode, copy, cut, max_depth);
    }
    free(copy);
    return 0;
}
