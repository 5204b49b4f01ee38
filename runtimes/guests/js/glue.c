/*
 * goru's JavaScript guest: QuickJS-NG behind the WIT world `guest`
 * (runtimes/guests/wit/goru.wit; its doc comments are the contract).
 *
 * One runtime and one context per instance, created by `init`. Every `run`
 * evaluates the user's code exactly as given (no wrapper, so line and column
 * numbers are the user's) in that context, then runs an event loop: promise
 * jobs, batched host calls, timers, until nothing is left.
 *
 * Output goes straight to WASI stdout/stderr with write(2), one write per
 * console call: nothing is held back in a buffer if the instance is killed.
 *
 * Host calls: `call`/`asyncCall` for the embedder's functions, and the
 * built-in modules (`kv`, `fs`, `http`: JS wrappers in runtimes/src/modules,
 * embedded by the builder as goru_modules.h) through a private `host` object.
 *
 * Built by runtimes/guests/builder/src/js.rs, which also defines
 * GORU_STACK_SIZE (the linear-memory stack, linked stack-first) and
 * GORU_STACK_RESERVE (the part of it QuickJS must leave to the C code that
 * runs after it detects an overflow).
 */

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "quickjs.h"

/* goru_modules[]: the built-in modules' JS wrappers (generated). */
#include "goru_modules.h"

#if !defined(GORU_STACK_SIZE) || !defined(GORU_STACK_RESERVE)
#error "build with the goru guest builder: it defines the stack sizes"
#endif

#define countof(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* Instance state                                                           */

static JSRuntime *rt;
static JSContext *ctx;

/* Built-ins captured at init, before user code can replace them, so that the
   glue's own formatting does not change when a program redefines them. */
static JSValue builtin_string;               /* String */
static JSValue builtin_object_to_string;     /* Object.prototype.toString */
static JSValue builtin_function_to_string;   /* Function.prototype.toString */
static JSValue builtin_map_entries;          /* Map.prototype.entries */
static JSValue builtin_set_values;           /* Set.prototype.values */
static JSValue builtin_date_to_iso;          /* Date.prototype.toISOString */
static JSValue builtin_number_value_of;      /* Number.prototype.valueOf */
static JSValue builtin_string_value_of;      /* String.prototype.valueOf */
static JSValue builtin_boolean_value_of;     /* Boolean.prototype.valueOf */
static JSValue builtin_parse_int;            /* parseInt */
static JSValue builtin_parse_float;          /* parseFloat */
static JSAtom atom_to_string_tag;            /* Symbol.toStringTag */

/* Set by std.exit(): the run ends as soon as control is back in the glue.
   The exception std.exit throws is uncatchable, but promise machinery or a
   C caller could still swallow it, so this flag is what the loop trusts. */
static bool exit_requested;
static int32_t exit_code;

/* ------------------------------------------------------------------------ */
/* Growable byte buffer                                                     */

typedef struct {
    char *data; /* NUL-terminated once anything was written */
    size_t len, cap;
    bool oom; /* an allocation failed: the contents are incomplete */
} Buf;

static bool buf_reserve(Buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra < b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap <= b->len + extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static void buf_put(Buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_puts(Buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_putc(Buf *b, char c)
{
    buf_put(b, &c, 1);
}

static void buf_repeat(Buf *b, char c, size_t n)
{
    while (n--)
        buf_putc(b, c);
}

static void buf_put_int(Buf *b, int64_t v)
{
    char tmp[24];
    buf_puts(b, (snprintf(tmp, sizeof tmp, "%lld", (long long)v), tmp));
}

static const char *buf_str(const Buf *b)
{
    return b->data ? b->data : "";
}

static void buf_free(Buf *b)
{
    free(b->data);
    *b = (Buf){0};
}

/* A list of buffers: the formatted entries of one object. */
typedef struct {
    Buf *items;
    size_t len, cap;
    bool oom;
} List;

static Buf *list_push(List *l)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        Buf *p = realloc(l->items, cap * sizeof *p);
        if (!p) {
            l->oom = true;
            return NULL;
        }
        l->items = p;
        l->cap = cap;
    }
    l->items[l->len] = (Buf){0};
    return &l->items[l->len++];
}

static void list_free(List *l)
{
    for (size_t i = 0; i < l->len; i++)
        buf_free(&l->items[i]);
    free(l->items);
    *l = (List){0};
}

/* Display width as node counts it for layout: code points, not bytes. */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += ((unsigned char)s[i] & 0xC0) != 0x80;
    return w;
}

/* ------------------------------------------------------------------------ */
/* Small helpers around the QuickJS API                                     */

/* Drops a pending exception the caller can recover from. Returns false, and
   leaves it pending, when it is uncatchable (std.exit, an interrupt): those
   must keep unwinding. */
static bool clear_catchable_exception(void)
{
    JSValue e = JS_GetException(ctx);
    if (JS_IsUncatchableError(e)) {
        JS_Throw(ctx, e);
        return false;
    }
    JS_FreeValue(ctx, e);
    return true;
}

/* Appends a JS value converted with ToString; -1 on exception. */
static int put_to_string(Buf *b, JSValueConst v)
{
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, v);
    if (!s)
        return -1;
    buf_put(b, s, n);
    JS_FreeCString(ctx, s);
    return 0;
}

/* A string-valued property as a malloc'd C string; NULL if it is absent or
   not a string (no exception is left pending unless it is uncatchable). */
static char *get_string_prop(JSValueConst obj, const char *name)
{
    JSValue v = JS_GetPropertyStr(ctx, obj, name);
    char *out = NULL;
    if (JS_IsException(v)) {
        clear_catchable_exception();
        return NULL;
    }
    if (JS_IsString(v)) {
        const char *s = JS_ToCString(ctx, v);
        if (s) {
            out = strdup(s);
            JS_FreeCString(ctx, s);
        } else {
            clear_catchable_exception();
        }
    }
    JS_FreeValue(ctx, v);
    return out;
}

/* Appends a string-valued property, NUL bytes and all (a message may hold
   them); false if it is absent or not a string (no exception is left
   pending unless it is uncatchable). */
static bool put_string_prop(Buf *out, JSValueConst obj, const char *name)
{
    JSValue v = JS_GetPropertyStr(ctx, obj, name);
    bool found = false;
    if (JS_IsException(v)) {
        clear_catchable_exception();
        return false;
    }
    if (JS_IsString(v)) {
        if (put_to_string(out, v) == 0)
            found = true;
        else
            clear_catchable_exception();
    }
    JS_FreeValue(ctx, v);
    return found;
}

/* Calls a captured built-in and appends the string it returns. */
static int put_builtin_call(Buf *b, JSValueConst fn, JSValueConst this_val, int argc, JSValueConst *argv)
{
    JSValue r = JS_Call(ctx, fn, this_val, argc, argv);
    if (JS_IsException(r))
        return -1;
    int ret = put_to_string(b, r);
    JS_FreeValue(ctx, r);
    return ret;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* the host closed or capped the stream: nothing to do */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* ------------------------------------------------------------------------ */
/* Value formatting, after node's util.inspect: what console.log prints and
   what the REPL shows. Layout rules (80 columns, depth 2, 100 items, short
   array items in columns) follow node so output looks familiar. */

#define INSPECT_DEPTH 2
#define INSPECT_MAX_ITEMS 100
#define INSPECT_BREAK_LENGTH 80
#define INSPECT_COMPACT 3
#define INSPECT_MAX_NESTING 16
#define INSPECT_MAX_BYTES 50

typedef struct {
    JSValueConst seen[INSPECT_MAX_NESTING]; /* objects being formatted, outermost first */
    int ref[INSPECT_MAX_NESTING];           /* their "<ref *N>" number, 0 if none */
    int n_seen;
    int next_ref;
    int max_depth;
    int indent;        /* columns the current entries are indented by */
    int current_depth; /* depth of the innermost object entered so far */
} Inspect;

static int inspect(Inspect *I, Buf *out, JSValueConst v, int depth);

/* A string literal as node shows it: single quotes unless the text has some,
   then double quotes, then backquotes. */
static void put_quoted(Buf *out, const char *s, size_t n)
{
    char q = '\'';
    if (memchr(s, '\'', n)) {
        bool has_interp = false;
        for (size_t i = 0; i + 1 < n; i++)
            has_interp |= s[i] == '$' && s[i + 1] == '{';
        if (!memchr(s, '"', n))
            q = '"';
        else if (!memchr(s, '`', n) && !has_interp)
            q = '`';
    }
    buf_putc(out, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\n': buf_puts(out, "\\n"); break;
        case '\t': buf_puts(out, "\\t"); break;
        case '\r': buf_puts(out, "\\r"); break;
        case '\b': buf_puts(out, "\\b"); break;
        case '\f': buf_puts(out, "\\f"); break;
        case '\v': buf_puts(out, "\\v"); break;
        case '\\': buf_puts(out, "\\\\"); break;
        default:
            if (c == (unsigned char)q) {
                buf_putc(out, '\\');
                buf_putc(out, (char)c);
            } else if (c < 0x20 || c == 0x7F) {
                char tmp[8];
                snprintf(tmp, sizeof tmp, "\\x%02X", c);
                buf_puts(out, tmp);
            } else {
                buf_putc(out, (char)c);
            }
        }
    }
    buf_putc(out, q);
}

static int put_quoted_value(Buf *out, JSValueConst v)
{
    size_t n;
    const char *s = JS_ToCStringLen(ctx, &n, v);
    if (!s)
        return -1;
    put_quoted(out, s, n);
    JS_FreeCString(ctx, s);
    return 0;
}

static int put_number(Buf *out, JSValueConst v)
{
    if (JS_VALUE_GET_TAG(v) == JS_TAG_INT) {
        buf_put_int(out, JS_VALUE_GET_INT(v));
        return 0;
    }
    double d;
    if (JS_ToFloat64(ctx, &d, v))
        return -1;
    if (d == 0 && signbit(d)) {
        buf_puts(out, "-0");
        return 0;
    }
    return put_to_string(out, v);
}

/* A property key: bare when it is an identifier, else quoted; symbols in brackets. */
static int put_key(Buf *out, JSAtom atom)
{
    JSValue key = JS_AtomToValue(ctx, atom);
    int ret = 0;
    if (JS_IsException(key))
        return -1;
    if (JS_IsSymbol(key)) {
        buf_putc(out, '[');
        ret = put_builtin_call(out, builtin_string, JS_UNDEFINED, 1, &key);
        buf_putc(out, ']');
    } else {
        size_t n;
        const char *s = JS_ToCStringLen(ctx, &n, key);
        if (!s) {
            ret = -1;
        } else {
            bool ident = n > 0 && !(s[0] >= '0' && s[0] <= '9');
            for (size_t i = 0; i < n && ident; i++) {
                char c = s[i];
                ident = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
            }
            if (ident)
                buf_put(out, s, n);
            else
                put_quoted(out, s, n);
            JS_FreeCString(ctx, s);
        }
    }
    JS_FreeValue(ctx, key);
    return ret;
}

/* The "[object Tag]" tag of a value, without the brackets; NULL with an
   exception pending when even that fails. */
static char *class_tag(JSValueConst v)
{
    Buf b = {0};
    if (put_builtin_call(&b, builtin_object_to_string, v, 0, NULL) < 0) {
        buf_free(&b);
        if (!clear_catchable_exception())
            return NULL;
        buf_puts(&b, "[object Object]");
    }
    const char *s = buf_str(&b);
    size_t n = strlen(s);
    char *tag = n > 9 && strncmp(s, "[object ", 8) == 0 ? strndup(s + 8, n - 9) : strdup("Object");
    buf_free(&b);
    if (!tag)
        JS_ThrowOutOfMemory(ctx);
    return tag;
}

/* Symbol.toStringTag when it is a non-empty string, else NULL. */
static char *to_string_tag(JSValueConst v)
{
    JSValue t = JS_GetProperty(ctx, v, atom_to_string_tag);
    char *out = NULL;
    if (JS_IsException(t)) {
        clear_catchable_exception();
        return NULL;
    }
    if (JS_IsString(t)) {
        const char *s = JS_ToCString(ctx, t);
        if (s && *s)
            out = strdup(s);
        if (s)
            JS_FreeCString(ctx, s);
    }
    JS_FreeValue(ctx, t);
    return out;
}

/* The name of the nearest constructor on the prototype chain ("Foo" for an
   instance of class Foo); NULL when there is none (a null prototype). */
static char *constructor_name(JSValueConst v)
{
    JSValue obj = JS_DupValue(ctx, v);
    for (int hops = 0; hops < 64; hops++) {
        JSValue proto = JS_GetPrototype(ctx, obj);
        JS_FreeValue(ctx, obj);
        if (JS_IsException(proto)) {
            clear_catchable_exception();
            return NULL;
        }
        if (!JS_IsObject(proto))
            return NULL;
        JSPropertyDescriptor desc;
        JSAtom atom = JS_NewAtom(ctx, "constructor");
        int has = JS_GetOwnProperty(ctx, &desc, proto, atom);
        JS_FreeAtom(ctx, atom);
        if (has < 0) {
            JS_FreeValue(ctx, proto);
            clear_catchable_exception();
            return NULL;
        }
        if (has) {
            char *name = NULL;
            if (JS_IsFunction(ctx, desc.value))
                name = get_string_prop(desc.value, "name");
            JS_FreeValue(ctx, desc.value);
            JS_FreeValue(ctx, desc.getter);
            JS_FreeValue(ctx, desc.setter);
            if (name && *name) {
                JS_FreeValue(ctx, proto);
                return name;
            }
            free(name);
        }
        obj = proto;
    }
    JS_FreeValue(ctx, obj);
    return NULL;
}

/* node's prefix before braces: "Foo(2) [Tag] ", "[Object: null prototype] ". */
static void put_prefix(Buf *out, const char *cons, const char *tag, const char *fallback, const char *size)
{
    if (!cons) {
        buf_putc(out, '[');
        buf_puts(out, fallback);
        buf_puts(out, size);
        buf_puts(out, ": null prototype] ");
        if (tag && strcmp(tag, fallback) != 0) {
            buf_putc(out, '[');
            buf_puts(out, tag);
            buf_puts(out, "] ");
        }
        return;
    }
    buf_puts(out, cons);
    buf_puts(out, size);
    buf_putc(out, ' ');
    if (tag && strcmp(tag, cons) != 0) {
        buf_putc(out, '[');
        buf_puts(out, tag);
        buf_puts(out, "] ");
    }
}

/* Lays out short array items in aligned columns, as node does for arrays of
   more than six entries. Returns false (and leaves `grouped` empty) when the
   items are too long or too uneven to group. */
static bool group_items(Inspect *I, const List *entries, size_t items, bool numeric, List *grouped)
{
    size_t total = 0, max_len = 0;
    size_t *len = malloc(items * sizeof *len);
    if (!len)
        return false;
    for (size_t i = 0; i < items; i++) {
        len[i] = text_width(buf_str(&entries->items[i]), entries->items[i].len);
        total += len[i] + 2;
        if (len[i] > max_len)
            max_len = len[i];
    }
    size_t actual_max = max_len + 2;
    bool fits = actual_max * 3 + (size_t)I->indent < INSPECT_BREAK_LENGTH &&
                ((double)total / (double)actual_max > 5 || max_len <= 6);
    if (!fits) {
        free(len);
        return false;
    }
    double average_bias = sqrt((double)actual_max - (double)total / (double)entries->len);
    double biased_max = fmax((double)actual_max - 3 - average_bias, 1);
    double columns = fmin(fmin(round(sqrt(2.5 * biased_max * (double)items) / biased_max),
                               floor((double)(INSPECT_BREAK_LENGTH - I->indent) / (double)actual_max)),
                          fmin(INSPECT_COMPACT * 4, 15));
    if (columns <= 1) {
        free(len);
        return false;
    }
    size_t cols = (size_t)columns;
    size_t col_width[15];
    for (size_t c = 0; c < cols; c++) {
        col_width[c] = 0;
        for (size_t j = c; j < items; j += cols)
            if (len[j] > col_width[c])
                col_width[c] = len[j];
        col_width[c] += 2;
    }
    for (size_t row = 0; row < items; row += cols) {
        Buf *line = list_push(grouped);
        if (!line)
            break;
        size_t end = row + cols < items ? row + cols : items;
        for (size_t j = row; j < end; j++) {
            const Buf *e = &entries->items[j];
            size_t width = len[j] + (j + 1 < end ? 2 : 0);
            size_t target = col_width[j - row] - (j + 1 < end ? 0 : 2);
            size_t pad = target > width ? target - width : 0;
            /* numbers align right, everything else left */
            if (numeric)
                buf_repeat(line, ' ', pad);
            buf_put(line, buf_str(e), e->len);
            if (j + 1 < end)
                buf_puts(line, ", ");
            if (!numeric && j + 1 < end)
                buf_repeat(line, ' ', pad);
        }
    }
    for (size_t i = items; i < entries->len; i++) {
        Buf *rest = list_push(grouped);
        if (rest)
            buf_put(rest, buf_str(&entries->items[i]), entries->items[i].len);
    }
    free(len);
    return true;
}

/* Joins an object's entries: on one line when they fit, else one per line. */
static void reduce(Inspect *I, Buf *out, List *entries, const char *base, const char *open, const char *close,
                   int depth, size_t group_count, bool numeric)
{
    List grouped = {0};
    List *output = entries;
    if (group_count > 0 && entries->len > 6 && group_items(I, entries, group_count, numeric, &grouped))
        output = &grouped;
    if (output == entries && I->current_depth - depth < INSPECT_COMPACT) {
        /* every entry costs at least its separator; then its text */
        size_t start = output->len + (size_t)I->indent + strlen(open) + strlen(base) + 10;
        size_t total = output->len + start;
        bool fits = total + output->len <= INSPECT_BREAK_LENGTH && !strchr(base, '\n');
        for (size_t i = 0; fits && i < output->len; i++) {
            const Buf *e = &output->items[i];
            total += text_width(buf_str(e), e->len);
            fits = total <= INSPECT_BREAK_LENGTH && !memchr(buf_str(e), '\n', e->len);
        }
        if (fits) {
            if (*base) {
                buf_puts(out, base);
                buf_putc(out, ' ');
            }
            buf_puts(out, open);
            buf_putc(out, ' ');
            for (size_t i = 0; i < output->len; i++) {
                if (i)
                    buf_puts(out, ", ");
                buf_put(out, buf_str(&output->items[i]), output->items[i].len);
            }
            buf_putc(out, ' ');
            buf_puts(out, close);
            list_free(&grouped);
            return;
        }
    }
    if (*base) {
        buf_puts(out, base);
        buf_putc(out, ' ');
    }
    buf_puts(out, open);
    for (size_t i = 0; i < output->len; i++) {
        if (i)
            buf_putc(out, ',');
        buf_putc(out, '\n');
        buf_repeat(out, ' ', (size_t)I->indent + 2);
        buf_put(out, buf_str(&output->items[i]), output->items[i].len);
    }
    buf_putc(out, '\n');
    buf_repeat(out, ' ', (size_t)I->indent);
    buf_puts(out, close);
    list_free(&grouped);
}

/* Formats a nested value into a new entry, indented one level deeper. */
static int push_value(Inspect *I, List *entries, JSValueConst v, int depth, const char *prefix)
{
    Buf *e = list_push(entries);
    if (!e)
        return 0;
    buf_puts(e, prefix);
    I->indent += 2;
    int ret = inspect(I, e, v, depth);
    I->indent -= 2;
    return ret;
}

/* The array index a key names, or -1 when it names none. */
static int64_t key_index(JSAtom atom)
{
    const char *s = JS_AtomToCString(ctx, atom);
    int64_t index = -1;
    if (s) {
        char *end;
        long long i = strtoll(s, &end, 10);
        if (*s >= '0' && *s <= '9' && *end == '\0' && (s[0] != '0' || s[1] == '\0') && i <= UINT32_MAX - 1)
            index = i;
        JS_FreeCString(ctx, s);
    } else {
        clear_catchable_exception();
    }
    return index;
}

/* How many of an array's own keys are indices. Own keys come indices first,
   in order, so bisection finds the first other key without looking at
   every element of a long array. */
static uint32_t count_index_keys(const JSPropertyEnum *props, uint32_t n)
{
    uint32_t first = 0, end = n;
    while (first < end) {
        uint32_t mid = first + (end - first) / 2;
        if (key_index(props[mid].atom) >= 0)
            first = mid + 1;
        else
            end = mid;
    }
    return first;
}

/* Whether an error's own property is already shown by its header line. */
static bool is_error_header_key(JSAtom atom)
{
    const char *key = JS_AtomToCString(ctx, atom);
    bool header = key && (!strcmp(key, "name") || !strcmp(key, "message") || !strcmp(key, "stack"));
    JS_FreeCString(ctx, key);
    return header;
}

/* "key: value" entries for the object's own enumerable keys `props`
   (skipping, for an error, the keys its header line shows). */
static int push_properties(Inspect *I, List *entries, JSValueConst obj, int depth, const JSPropertyEnum *props,
                           uint32_t n)
{
    bool is_error = JS_IsError(obj);
    int ret = 0;
    for (uint32_t i = 0; i < n && ret == 0; i++) {
        if (is_error && is_error_header_key(props[i].atom))
            continue;
        JSPropertyDescriptor desc;
        int has = JS_GetOwnProperty(ctx, &desc, obj, props[i].atom);
        if (has < 0) {
            ret = -1;
            break;
        }
        if (!has)
            continue;
        Buf *e = list_push(entries);
        if (e) {
            ret = put_key(e, props[i].atom);
            buf_puts(e, ": ");
            if (ret == 0) {
                if (desc.flags & JS_PROP_GETSET) {
                    bool get = !JS_IsUndefined(desc.getter), set = !JS_IsUndefined(desc.setter);
                    buf_puts(e, get && set ? "[Getter/Setter]" : get ? "[Getter]" : "[Setter]");
                } else {
                    I->indent += 2;
                    ret = inspect(I, e, desc.value, depth + 1);
                    I->indent -= 2;
                }
            }
        }
        JS_FreeValue(ctx, desc.value);
        JS_FreeValue(ctx, desc.getter);
        JS_FreeValue(ctx, desc.setter);
    }
    return ret;
}

/* "... N more items" after the items shown. */
static void push_more_items(List *entries, int64_t more)
{
    Buf *e = more > 0 ? list_push(entries) : NULL;
    if (e) {
        buf_puts(e, "... ");
        buf_put_int(e, more);
        buf_puts(e, more > 1 ? " more items" : " more item");
    }
}

/* The items of an array: up to INSPECT_MAX_ITEMS entries, a run of holes
   counting as one ("<3 empty items>"), then "... N more items". `index_keys`
   are its own index keys, in order. Sets *n_items to the entries added
   before that last one, and *numeric unless every item shown is a number or
   BigInt. */
static int push_array_items(Inspect *I, List *entries, JSValueConst arr, int depth, int64_t length,
                            const JSPropertyEnum *index_keys, uint32_t n_index_keys, size_t *n_items,
                            bool *numeric)
{
    int64_t i = 0;
    uint32_t k = 0;
    int shown = 0;
    while (i < length && shown < INSPECT_MAX_ITEMS) {
        int64_t present = k < n_index_keys ? key_index(index_keys[k].atom) : length;
        shown++;
        if (present > i) {
            Buf *e = list_push(entries);
            if (e) {
                buf_putc(e, '<');
                buf_put_int(e, present - i);
                buf_puts(e, present - i > 1 ? " empty items>" : " empty item>");
            }
            *numeric = false;
            i = present;
            continue;
        }
        JSValue item = JS_GetPropertyInt64(ctx, arr, i);
        if (JS_IsException(item))
            return -1;
        *numeric &= JS_IsNumber(item) || JS_IsBigInt(item);
        int ret = push_value(I, entries, item, depth + 1, "");
        JS_FreeValue(ctx, item);
        if (ret < 0)
            return -1;
        i++;
        k++;
    }
    *n_items = entries->len;
    push_more_items(entries, length - i);
    return 0;
}

/* The first entries of a Map ("k => v") or Set of `size` entries, read with
   the built-in iterator, then "... N more items". */
static int push_collection_items(Inspect *I, List *entries, JSValueConst coll, int depth, bool is_map, int64_t size)
{
    JSValue it = JS_Call(ctx, is_map ? builtin_map_entries : builtin_set_values, coll, 0, NULL);
    JSValue next = JS_IsException(it) ? JS_EXCEPTION : JS_GetPropertyStr(ctx, it, "next");
    int ret = JS_IsException(next) ? -1 : 0;
    int64_t shown = 0;
    while (ret == 0 && shown < INSPECT_MAX_ITEMS) {
        JSValue r = JS_Call(ctx, next, it, 0, NULL);
        if (JS_IsException(r)) {
            ret = -1;
            break;
        }
        JSValue done = JS_GetPropertyStr(ctx, r, "done");
        int finished = JS_ToBool(ctx, done);
        JS_FreeValue(ctx, done);
        JSValue value = finished ? JS_UNDEFINED : JS_GetPropertyStr(ctx, r, "value");
        JS_FreeValue(ctx, r);
        if (finished) {
            ret = finished < 0 ? -1 : 0;
            break;
        }
        shown++;
        if (!is_map) {
            ret = push_value(I, entries, value, depth + 1, "");
        } else {
            JSValue key = JS_GetPropertyInt64(ctx, value, 0);
            JSValue val = JS_GetPropertyInt64(ctx, value, 1);
            ret = push_value(I, entries, key, depth + 1, "");
            if (ret == 0 && entries->len > 0) {
                Buf *e = &entries->items[entries->len - 1];
                buf_puts(e, " => ");
                I->indent += 2;
                ret = inspect(I, e, val, depth + 1);
                I->indent -= 2;
            }
            JS_FreeValue(ctx, key);
            JS_FreeValue(ctx, val);
        }
        JS_FreeValue(ctx, value);
    }
    if (ret == 0)
        push_more_items(entries, size - shown);
    JS_FreeValue(ctx, next);
    JS_FreeValue(ctx, it);
    return ret;
}

/* An error as node prints it: "Name: message" and the stack below it; in
   brackets when it has no stack, unless it is a traceback (`bare`). */
static int put_error(Inspect *I, Buf *out, JSValueConst err, bool bare)
{
    /* Length-carrying: a message with a NUL byte is shown whole. */
    Buf name = {0}, message = {0}, stack = {0};
    bool has_name = put_string_prop(&name, err, "name");
    put_string_prop(&message, err, "message");
    put_string_prop(&stack, err, "stack");
    bool bracket = !bare && stack.len == 0;
    if (bracket)
        buf_putc(out, '[');
    if (has_name)
        buf_put(out, buf_str(&name), name.len);
    else
        buf_puts(out, "Error");
    if (message.len > 0) {
        buf_puts(out, ": ");
        buf_put(out, buf_str(&message), message.len);
    }
    if (bracket) {
        buf_putc(out, ']');
    } else if (stack.len > 0) {
        size_t n = stack.len;
        while (n > 0 && stack.data[n - 1] == '\n')
            n--;
        buf_putc(out, '\n');
        buf_repeat(out, ' ', (size_t)I->indent);
        for (size_t i = 0; i < n; i++) {
            buf_putc(out, stack.data[i]);
            if (stack.data[i] == '\n')
                buf_repeat(out, ' ', (size_t)I->indent);
        }
    }
    buf_free(&name);
    buf_free(&message);
    buf_free(&stack);
    return JS_HasException(ctx) ? -1 : 0;
}

/* "[Function: f]", "[class A extends B]", "[AsyncFunction (anonymous)]". */
static int put_function_base(Buf *out, JSValueConst fn, const char *tag, const char *cons)
{
    char *name = get_string_prop(fn, "name");
    bool is_class = false;
    if (JS_IsConstructor(ctx, fn)) {
        Buf src = {0};
        if (put_builtin_call(&src, builtin_function_to_string, fn, 0, NULL) < 0) {
            if (!clear_catchable_exception()) {
                free(name);
                return -1;
            }
        }
        is_class = strncmp(buf_str(&src), "class", 5) == 0;
        buf_free(&src);
    }
    if (is_class) {
        buf_puts(out, "[class ");
        buf_puts(out, name && *name ? name : "(anonymous)");
        JSValue super = JS_GetPrototype(ctx, fn);
        if (JS_IsException(super)) {
            clear_catchable_exception();
        } else {
            char *super_name = JS_IsFunction(ctx, super) ? get_string_prop(super, "name") : NULL;
            if (super_name && *super_name) {
                buf_puts(out, " extends ");
                buf_puts(out, super_name);
            }
            free(super_name);
            JS_FreeValue(ctx, super);
        }
        buf_putc(out, ']');
    } else {
        const char *type = "Function";
        if (!strcmp(tag, "AsyncFunction") || !strcmp(tag, "GeneratorFunction") || !strcmp(tag, "AsyncGeneratorFunction"))
            type = tag;
        buf_putc(out, '[');
        buf_puts(out, type);
        if (!cons)
            buf_puts(out, " (null prototype)");
        if (name && *name) {
            buf_puts(out, ": ");
            buf_puts(out, name);
        } else {
            buf_puts(out, " (anonymous)");
        }
        buf_putc(out, ']');
        if (cons && strcmp(cons, type) != 0 && strcmp(cons, "Function") != 0) {
            buf_putc(out, ' ');
            buf_puts(out, cons);
        }
    }
    free(name);
    return JS_HasException(ctx) ? -1 : 0;
}

/* `[Number: 3]` for a boxed primitive; 0 if `v` is not one, 1 if written. */
static int put_boxed(Buf *out, JSValueConst v, const char *tag)
{
    JSValueConst value_of;
    if (!strcmp(tag, "Number"))
        value_of = builtin_number_value_of;
    else if (!strcmp(tag, "String"))
        value_of = builtin_string_value_of;
    else if (!strcmp(tag, "Boolean"))
        value_of = builtin_boolean_value_of;
    else
        return 0;
    JSValue prim = JS_Call(ctx, value_of, v, 0, NULL);
    if (JS_IsException(prim))
        return clear_catchable_exception() ? 0 : -1;
    buf_putc(out, '[');
    buf_puts(out, tag);
    buf_puts(out, ": ");
    int ret = JS_IsString(prim) ? put_quoted_value(out, prim) : JS_IsNumber(prim) ? put_number(out, prim) : put_to_string(out, prim);
    buf_putc(out, ']');
    JS_FreeValue(ctx, prim);
    return ret < 0 ? -1 : 1;
}

static int inspect_object(Inspect *I, Buf *out, JSValueConst v, int depth)
{
    if (JS_IsProxy(v)) {
        /* like node: show the target, without running the proxy's traps */
        JSValue target = JS_GetProxyTarget(ctx, v);
        if (JS_IsException(target))
            return -1;
        int ret = inspect(I, out, target, depth);
        JS_FreeValue(ctx, target);
        return ret;
    }
    for (int i = 0; i < I->n_seen; i++) {
        if (JS_VALUE_GET_PTR(I->seen[i]) == JS_VALUE_GET_PTR(v)) {
            if (!I->ref[i])
                I->ref[i] = ++I->next_ref;
            buf_puts(out, "[Circular *");
            buf_put_int(out, I->ref[i]);
            buf_putc(out, ']');
            return 0;
        }
    }

    int ret = 0;
    char *tag = class_tag(v);
    if (!tag)
        return -1;
    char *cons = constructor_name(v);
    char *own_tag = to_string_tag(v);
    if (JS_HasException(ctx)) {
        free(tag);
        free(cons);
        free(own_tag);
        return -1;
    }
    Buf base = {0}, open = {0};
    const char *close = "}";
    List entries = {0};
    size_t group_count = 0; /* leading entries that are array items */
    bool numeric = true;    /* all those items are numbers */
    int64_t length = 0;
    JSPropertyEnum *props = NULL;
    uint32_t n_props = 0, n_index_keys = 0; /* own enumerable keys; indices come first */
    enum { PLAIN, ARRAY, TYPED, SET, MAP } kind = PLAIN;
    int typed = JS_GetTypedArrayType(v);
    char size[32] = "";

    /* 1. What the object is: its braces or its base text, and whether it
          prints as just that. */
    bool only_base = false;
    if (JS_IsArray(v) || typed >= 0) {
        kind = JS_IsArray(v) ? ARRAY : TYPED;
        if (JS_GetLength(ctx, v, &length)) {
            ret = -1;
            goto done;
        }
        snprintf(size, sizeof size, "(%lld)", (long long)length);
        if (kind == TYPED || !cons || strcmp(cons, "Array") != 0 || own_tag)
            put_prefix(&open, cons, own_tag, kind == TYPED ? tag : "Array", size);
        buf_putc(&open, '[');
        close = "]";
    } else if (JS_IsMap(v) || JS_IsSet(v)) {
        kind = JS_IsMap(v) ? MAP : SET;
        JSValue n = JS_GetPropertyStr(ctx, v, "size");
        if (JS_IsException(n) || JS_ToInt64(ctx, &length, n)) {
            JS_FreeValue(ctx, n);
            ret = -1;
            goto done;
        }
        JS_FreeValue(ctx, n);
        snprintf(size, sizeof size, "(%lld)", (long long)length);
        put_prefix(&open, cons, own_tag, kind == MAP ? "Map" : "Set", size);
        buf_putc(&open, '{');
    } else if (JS_IsFunction(ctx, v)) {
        ret = put_function_base(&base, v, tag, cons);
        only_base = true;
    } else if (JS_IsError(v)) {
        ret = put_error(I, &base, v, false);
        only_base = true;
    } else if (JS_IsRegExp(v)) {
        ret = put_to_string(&base, v);
        only_base = true;
    } else if (JS_IsDate(v)) {
        if (put_builtin_call(&base, builtin_date_to_iso, v, 0, NULL) < 0) {
            ret = clear_catchable_exception() ? 0 : -1;
            buf_free(&base);
            buf_puts(&base, "Invalid Date");
        }
        only_base = true;
    } else if ((ret = put_boxed(&base, v, tag)) != 0) {
        ret = ret < 0 ? -1 : 0;
        only_base = true;
    } else if (JS_IsPromise(v)) {
        put_prefix(&open, cons, own_tag, "Promise", "");
        buf_putc(&open, '{');
        JSPromiseStateEnum state = JS_PromiseState(ctx, v);
        if (state == JS_PROMISE_PENDING) {
            Buf *e = list_push(&entries);
            if (e)
                buf_puts(e, "<pending>");
        } else if (depth <= I->max_depth) {
            JSValue result = JS_PromiseResult(ctx, v);
            ret = push_value(I, &entries, result, depth + 1, state == JS_PROMISE_REJECTED ? "<rejected> " : "");
            JS_FreeValue(ctx, result);
        }
    } else if (!strcmp(tag, "WeakMap") || !strcmp(tag, "WeakSet")) {
        put_prefix(&open, cons, own_tag, tag, "");
        buf_puts(&open, "{ <items unknown> }");
        only_base = true;
    } else if (JS_IsArrayBuffer(v)) {
        size_t n = 0;
        uint8_t *bytes = JS_GetArrayBuffer(ctx, &n, v);
        put_prefix(&open, cons, own_tag, "ArrayBuffer", "");
        buf_putc(&open, '{');
        Buf *e = list_push(&entries);
        if (e) {
            buf_puts(e, "[Uint8Contents]: <");
            for (size_t i = 0; bytes && i < n && i < INSPECT_MAX_BYTES; i++) {
                char hex[4];
                snprintf(hex, sizeof hex, i ? " %02x" : "%02x", bytes[i]);
                buf_puts(e, hex);
            }
            if (n > INSPECT_MAX_BYTES) {
                buf_puts(e, " ... ");
                buf_put_int(e, (int64_t)(n - INSPECT_MAX_BYTES));
                buf_puts(e, " more bytes");
            }
            buf_putc(e, '>');
        }
        e = list_push(&entries);
        if (e) {
            buf_puts(e, "byteLength: ");
            buf_put_int(e, (int64_t)n);
        }
    } else {
        if (!cons || strcmp(cons, "Object") != 0 || own_tag)
            put_prefix(&open, cons, own_tag, "Object", "");
        buf_putc(&open, '{');
    }
    if (ret < 0)
        goto done;

    /* An object with nothing more to show prints as its base or "{}". */
    if (JS_GetOwnPropertyNames(ctx, &props, &n_props, v, JS_GPN_STRING_MASK | JS_GPN_SYMBOL_MASK | JS_GPN_ENUM_ONLY)) {
        props = NULL;
        n_props = 0;
        ret = -1;
        goto done;
    }
    if (kind == ARRAY || kind == TYPED)
        n_index_keys = count_index_keys(props, n_props);
    bool has_props = n_props > n_index_keys;
    if (!has_props && entries.len == 0 && length == 0) {
        if (only_base) {
            buf_put(out, buf_str(&base), base.len); /* an error's text may hold NUL */
            buf_puts(out, buf_str(&open));
        } else {
            buf_puts(out, buf_str(&open));
            buf_puts(out, close);
        }
        goto done;
    }
    if (depth > I->max_depth || I->n_seen == INSPECT_MAX_NESTING) {
        buf_putc(out, '[');
        buf_puts(out, kind == ARRAY ? "Array" : cons ? cons : "Object");
        buf_putc(out, ']');
        goto done;
    }
    if (only_base && !base.len)
        buf_puts(&base, buf_str(&open));
    if (only_base) {
        buf_free(&open);
        buf_putc(&open, '{');
    }

    /* 2. Its entries. */
    I->seen[I->n_seen] = v;
    I->ref[I->n_seen] = 0;
    I->n_seen++;
    I->current_depth = depth;
    if (kind == ARRAY || kind == TYPED) {
        ret = push_array_items(I, &entries, v, depth, length, props, n_index_keys, &group_count, &numeric);
    } else if (kind == MAP || kind == SET) {
        ret = push_collection_items(I, &entries, v, depth, kind == MAP, length);
    }
    if (ret == 0)
        ret = push_properties(I, &entries, v, depth, props + n_index_keys, n_props - n_index_keys);
    I->n_seen--;
    if (ret < 0)
        goto done;

    /* 3. Layout. */
    if (entries.oom)
        out->oom = true; /* an entry is missing: the whole text is incomplete */
    int ref = I->ref[I->n_seen];
    if (ref) {
        buf_puts(out, "<ref *");
        buf_put_int(out, ref);
        buf_puts(out, "> ");
    }
    if (entries.len == 0) {
        /* only skipped keys (an error's name, say): nothing to add */
        if (only_base)
            buf_put(out, buf_str(&base), base.len);
        else
            buf_puts(out, buf_str(&open));
        if (!only_base)
            buf_puts(out, close);
    } else {
        reduce(I, out, &entries, buf_str(&base), buf_str(&open), close, depth,
               kind == ARRAY || kind == TYPED ? group_count : 0, numeric);
    }

done:
    if (props)
        JS_FreePropertyEnum(ctx, props, n_props);
    list_free(&entries);
    buf_free(&base);
    buf_free(&open);
    free(tag);
    free(cons);
    free(own_tag);
    return ret;
}

static int inspect(Inspect *I, Buf *out, JSValueConst v, int depth)
{
    /* NORM: on wasm32 values are NaN-boxed and a double has no single tag */
    switch (JS_VALUE_GET_NORM_TAG(v)) {
    case JS_TAG_STRING:
    case JS_TAG_STRING_ROPE:
        return put_quoted_value(out, v);
    case JS_TAG_INT:
    case JS_TAG_FLOAT64:
        return put_number(out, v);
    case JS_TAG_BIG_INT:
    case JS_TAG_SHORT_BIG_INT:
        if (put_to_string(out, v) < 0)
            return -1;
        buf_putc(out, 'n');
        return 0;
    case JS_TAG_SYMBOL:
        return put_builtin_call(out, builtin_string, JS_UNDEFINED, 1, &v);
    case JS_TAG_OBJECT:
        return inspect_object(I, out, v, depth);
    default:
        return put_to_string(out, v);
    }
}

/* Formats one value; strings are quoted unless `raw_strings`. */
static int format_value(Buf *out, JSValueConst v, bool raw_strings, int max_depth)
{
    if (raw_strings && JS_IsString(v))
        return put_to_string(out, v);
    Inspect I = {.max_depth = max_depth};
    return inspect(&I, out, v, 0);
}

/* ------------------------------------------------------------------------ */
/* console and print                                                        */

/* node's util.format: printf-like directives in a leading string, then the
   remaining arguments separated by spaces. */
static int format_args(Buf *out, int argc, JSValueConst *argv)
{
    int next = 0;
    if (argc > 1 && JS_IsString(argv[0])) {
        size_t n;
        const char *f = JS_ToCStringLen(ctx, &n, argv[0]);
        if (!f)
            return -1;
        next = 1;
        int ret = 0;
        for (size_t i = 0; i < n && ret == 0; i++) {
            if (f[i] != '%' || i + 1 == n) {
                buf_putc(out, f[i]);
                continue;
            }
            char d = f[i + 1];
            if (d == '%') {
                buf_putc(out, '%');
                i++;
                continue;
            }
            if (!strchr("sdifjoOc", d) || next >= argc) {
                buf_putc(out, '%');
                continue;
            }
            i++;
            JSValueConst a = argv[next++];
            switch (d) {
            case 's':
                if (JS_IsString(a))
                    ret = put_to_string(out, a);
                else if (JS_IsObject(a))
                    ret = format_value(out, a, false, 0);
                else
                    ret = format_value(out, a, true, 0);
                break;
            case 'd':
            case 'i':
            case 'f': {
                /* Number(a), parseInt(a), parseFloat(a); a BigInt stays one */
                if (JS_IsBigInt(a) && d != 'f') {
                    ret = format_value(out, a, true, 0);
                    break;
                }
                JSValue num;
                double x = NAN;
                if (JS_IsSymbol(a))
                    num = JS_NewFloat64(ctx, NAN);
                else if (d == 'd')
                    num = JS_ToFloat64(ctx, &x, a) ? JS_EXCEPTION : JS_NewFloat64(ctx, x);
                else
                    num = JS_Call(ctx, d == 'i' ? builtin_parse_int : builtin_parse_float, JS_UNDEFINED, 1, &a);
                ret = JS_IsException(num) ? -1 : put_number(out, num);
                JS_FreeValue(ctx, num);
                break;
            }
            case 'j': {
                JSValue s = JS_JSONStringify(ctx, a, JS_UNDEFINED, JS_UNDEFINED);
                if (JS_IsException(s)) {
                    /* like node: a cycle prints as such, other errors throw */
                    JSValue exc = JS_GetException(ctx);
                    char *message = JS_IsError(exc) ? get_string_prop(exc, "message") : NULL;
                    if (message && strstr(message, "circular")) {
                        buf_puts(out, "[Circular]");
                        JS_FreeValue(ctx, exc);
                    } else {
                        JS_Throw(ctx, exc);
                        ret = -1;
                    }
                    free(message);
                } else if (JS_IsUndefined(s)) {
                    buf_puts(out, "undefined");
                } else {
                    ret = put_to_string(out, s);
                }
                JS_FreeValue(ctx, s);
                break;
            }
            case 'o':
                ret = format_value(out, a, false, 4);
                break;
            case 'O':
                ret = format_value(out, a, false, INSPECT_DEPTH);
                break;
            case 'c':
                break; /* CSS: nothing to show on a terminal */
            }
        }
        JS_FreeCString(ctx, f);
        if (ret < 0)
            return -1;
    }
    for (int i = next; i < argc; i++) {
        if (i > 0)
            buf_putc(out, ' ');
        if (format_value(out, argv[i], true, INSPECT_DEPTH) < 0)
            return -1;
    }
    return 0;
}

/* Writes one formatted line to stdout (magic 1) or stderr (magic 2). */
static JSValue js_console_write(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic)
{
    (void)this_val;
    Buf line = {0};
    if (format_args(&line, argc, argv) < 0) {
        buf_free(&line);
        return JS_EXCEPTION;
    }
    buf_putc(&line, '\n');
    if (line.oom) {
        buf_free(&line);
        return JS_ThrowOutOfMemory(c);
    }
    write_all(magic, line.data, line.len);
    buf_free(&line);
    return JS_UNDEFINED;
}

static JSValue js_console_trace(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    Buf line = {0};
    buf_puts(&line, "Trace");
    if (argc > 0)
        buf_puts(&line, ": ");
    if (format_args(&line, argc, argv) < 0) {
        buf_free(&line);
        return JS_EXCEPTION;
    }
    JSValue err = JS_NewError(c);
    char *stack = JS_IsException(err) ? NULL : get_string_prop(err, "stack");
    JS_FreeValue(c, err);
    buf_putc(&line, '\n');
    if (stack) {
        /* drop the first frame: it is this function */
        const char *rest = strchr(stack, '\n');
        buf_puts(&line, rest ? rest + 1 : "");
        free(stack);
    }
    if (line.oom) {
        buf_free(&line);
        return JS_ThrowOutOfMemory(c);
    }
    write_all(2, line.data, line.len);
    buf_free(&line);
    return JS_UNDEFINED;
}

static JSValue js_console_assert(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    int ok = argc > 0 ? JS_ToBool(c, argv[0]) : 0;
    if (ok < 0)
        return JS_EXCEPTION;
    if (ok)
        return JS_UNDEFINED;
    Buf line = {0};
    buf_puts(&line, "Assertion failed");
    if (argc > 1) {
        buf_puts(&line, ": ");
        if (format_args(&line, argc - 1, argv + 1) < 0) {
            buf_free(&line);
            return JS_EXCEPTION;
        }
    }
    buf_putc(&line, '\n');
    write_all(2, buf_str(&line), line.len);
    buf_free(&line);
    return JS_UNDEFINED;
}

/* ------------------------------------------------------------------------ */
/* stdin, std and readline()                                                */

static struct {
    char *data;
    size_t pos, len, cap; /* unread bytes are data[pos..len) */
    bool eof;
} in;

/* Reads more of stdin. 1: got bytes; 0: end of input; -1: out of memory. */
static int stdin_fill(void)
{
    if (in.eof)
        return 0;
    if (in.pos == in.len) {
        in.pos = in.len = 0;
    } else if (in.pos > 0 && in.cap - in.len < 4096) {
        /* make room by dropping what was consumed before growing */
        memmove(in.data, in.data + in.pos, in.len - in.pos);
        in.len -= in.pos;
        in.pos = 0;
    }
    if (in.cap - in.len < 4096) {
        size_t cap = in.cap ? in.cap * 2 : 65536;
        char *p = realloc(in.data, cap);
        if (!p)
            return -1;
        in.data = p;
        in.cap = cap;
    }
    for (;;) {
        ssize_t n = read(0, in.data + in.len, in.cap - in.len);
        if (n > 0) {
            in.len += (size_t)n;
            return 1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        in.eof = true;
        return 0;
    }
}

/* The next line without its "\n", or null at the end of input. */
static JSValue read_line(JSContext *c)
{
    size_t scanned = 0; /* bytes after in.pos known to hold no newline */
    for (;;) {
        char *nl = in.len > in.pos + scanned ? memchr(in.data + in.pos + scanned, '\n', in.len - in.pos - scanned) : NULL;
        if (nl) {
            size_t start = in.pos;
            in.pos = (size_t)(nl - in.data) + 1;
            return JS_NewStringLen(c, in.data + start, (size_t)(nl - in.data) - start);
        }
        scanned = in.len - in.pos;
        int r = stdin_fill();
        if (r < 0)
            return JS_ThrowOutOfMemory(c);
        if (r == 0) {
            if (in.pos == in.len)
                return JS_NULL;
            size_t start = in.pos;
            in.pos = in.len;
            return JS_NewStringLen(c, in.data + start, in.len - start);
        }
    }
}

static JSValue js_readline(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    (void)argc;
    (void)argv;
    return read_line(c);
}

/* std.in.readAsString([max_size]): the rest of stdin. */
static JSValue js_read_as_string(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    int64_t max = INT64_MAX;
    if (argc > 0 && !JS_IsUndefined(argv[0]) && JS_ToInt64(c, &max, argv[0]))
        return JS_EXCEPTION;
    for (;;) {
        if ((int64_t)(in.len - in.pos) >= max)
            break;
        int r = stdin_fill();
        if (r < 0)
            return JS_ThrowOutOfMemory(c);
        if (r == 0)
            break;
    }
    size_t n = in.len - in.pos;
    if (max >= 0 && (int64_t)n > max)
        n = (size_t)max;
    JSValue s = JS_NewStringLen(c, in.data ? in.data + in.pos : "", n);
    in.pos += n;
    return s;
}

/* std.out.puts / std.err.puts: the string as is, no newline added. */
static JSValue js_puts(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic)
{
    (void)this_val;
    for (int i = 0; i < argc; i++) {
        size_t n;
        const char *s = JS_ToCStringLen(c, &n, argv[i]);
        if (!s)
            return JS_EXCEPTION;
        write_all(magic, s, n);
        JS_FreeCString(c, s);
    }
    return JS_UNDEFINED;
}

/* Output is never buffered, so flushing has nothing to do. */
static JSValue js_flush(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)c;
    (void)this_val;
    (void)argc;
    (void)argv;
    return JS_UNDEFINED;
}

/* std.exit(n): ends the run with exit code n. */
static JSValue js_exit(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    int32_t code = 0;
    if (argc > 0 && !JS_IsUndefined(argv[0]) && JS_ToInt32(c, &code, argv[0]))
        return JS_EXCEPTION;
    exit_requested = true;
    exit_code = code;
    JSValue err = JS_NewError(c);
    if (JS_IsException(err))
        return err;
    JS_SetUncatchableError(c, err);
    return JS_Throw(c, err);
}

static const JSCFunctionListEntry std_in_funcs[] = {
    JS_CFUNC_DEF("getline", 0, js_readline),
    JS_CFUNC_DEF("readAsString", 1, js_read_as_string),
};

static const JSCFunctionListEntry std_out_funcs[] = {
    JS_CFUNC_MAGIC_DEF("puts", 1, js_puts, 1),
    JS_CFUNC_DEF("flush", 0, js_flush),
};

static const JSCFunctionListEntry std_err_funcs[] = {
    JS_CFUNC_MAGIC_DEF("puts", 1, js_puts, 2),
    JS_CFUNC_DEF("flush", 0, js_flush),
};

static JSValue new_object_with(const JSCFunctionListEntry *funcs, int n)
{
    JSValue obj = JS_NewObject(ctx);
    if (JS_IsException(obj) || JS_SetPropertyFunctionList(ctx, obj, funcs, n) < 0)
        abort();
    return obj;
}

/* The `std` object (also importable as the module "std" or "qjs:std"). */
static JSValue new_std_object(void)
{
    JSValue std = JS_NewObject(ctx);
    if (JS_IsException(std))
        abort();
    JS_SetPropertyStr(ctx, std, "in", new_object_with(std_in_funcs, countof(std_in_funcs)));
    JS_SetPropertyStr(ctx, std, "out", new_object_with(std_out_funcs, countof(std_out_funcs)));
    JS_SetPropertyStr(ctx, std, "err", new_object_with(std_err_funcs, countof(std_err_funcs)));
    JS_SetPropertyStr(ctx, std, "puts", JS_NewCFunctionMagic(ctx, js_puts, "puts", 1, JS_CFUNC_generic_magic, 1));
    JS_SetPropertyStr(ctx, std, "exit", JS_NewCFunction(ctx, js_exit, "exit", 1));
    return std;
}

static const char *const std_exports[] = {"in", "out", "err", "puts", "exit"};

static int init_std_module(JSContext *c, JSModuleDef *m)
{
    JSValue std = new_std_object();
    for (size_t i = 0; i < countof(std_exports); i++)
        JS_SetModuleExport(c, m, std_exports[i], JS_GetPropertyStr(c, std, std_exports[i]));
    JS_FreeValue(c, std);
    return 0;
}

/* Module loader: the only importable modules are the built-in `std` ones;
   there is no filesystem to load others from. */
static JSModuleDef *load_module(JSContext *c, const char *name, void *opaque)
{
    (void)opaque;
    if (strcmp(name, "std") == 0 || strcmp(name, "qjs:std") == 0) {
        JSModuleDef *m = JS_NewCModule(c, name, init_std_module);
        for (size_t i = 0; m && i < countof(std_exports); i++)
            JS_AddModuleExport(c, m, std_exports[i]);
        return m;
    }
    JS_ThrowReferenceError(c, "could not load module '%s'", name);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Timers and microtasks                                                    */

typedef struct {
    int64_t due;      /* CLOCK_MONOTONIC, ns */
    uint64_t seq;     /* scheduling order: breaks ties between equal `due`s */
    int64_t id;
    int64_t interval; /* ns; 0 for a one-shot timer */
    size_t pos;       /* index in the heap */
    JSValue func;
    int argc;
    JSValue *argv;
} Timer;

/* Pending timers: a binary min-heap ordered by (due, seq), and a table from
   id to timer so that clearTimeout is O(log n) even with many timers. Ids
   count from 1 in each run (no timer outlives its run). */
static Timer **timers;
static size_t n_timers, cap_timers;
static Timer **timer_by_id; /* [id - 1]; NULL once fired or cleared */
static size_t n_timer_ids, cap_timer_ids;
static uint64_t timer_seq;

static bool timer_before(const Timer *a, const Timer *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(size_t i, Timer *t)
{
    timers[i] = t;
    t->pos = i;
}

static void heap_swap(size_t i, size_t j)
{
    Timer *t = timers[i];
    heap_set(i, timers[j]);
    heap_set(j, t);
}

static void heap_up(size_t i)
{
    while (i > 0 && timer_before(timers[i], timers[(i - 1) / 2])) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n_timers && timer_before(timers[l], timers[m]))
            m = l;
        if (r < n_timers && timer_before(timers[r], timers[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static bool heap_push(Timer *t)
{
    if (n_timers == cap_timers) {
        size_t cap = cap_timers ? cap_timers * 2 : 16;
        Timer **p = realloc(timers, cap * sizeof *p);
        if (!p)
            return false;
        timers = p;
        cap_timers = cap;
    }
    t->seq = timer_seq++;
    heap_set(n_timers++, t);
    heap_up(n_timers - 1);
    return true;
}

static Timer *heap_remove(size_t i)
{
    Timer *t = timers[i];
    n_timers--;
    if (i < n_timers) {
        Timer *moved = timers[n_timers];
        heap_set(i, moved);
        heap_up(i);
        heap_down(moved->pos);
    }
    return t;
}

/* Frees a timer that is no longer in the heap. */
static void timer_free(Timer *t)
{
    timer_by_id[t->id - 1] = NULL;
    JS_FreeValue(ctx, t->func);
    for (int i = 0; i < t->argc; i++)
        JS_FreeValue(ctx, t->argv[i]);
    free(t->argv);
    free(t);
}

/* setTimeout(fn, ms, ...args) / setInterval (magic 1). Like node, a delay
   that is not a number from 1 to 2^31-1 ms becomes 1 ms. */
static JSValue js_set_timer(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic)
{
    (void)this_val;
    if (argc < 1 || !JS_IsFunction(c, argv[0]))
        return JS_ThrowTypeError(c, "The \"callback\" argument must be of type function");
    double ms = 1;
    if (argc > 1 && JS_ToFloat64(c, &ms, argv[1]))
        return JS_EXCEPTION;
    if (!(ms >= 1 && ms <= 2147483647))
        ms = 1;
    if (n_timer_ids == cap_timer_ids) {
        size_t cap = cap_timer_ids ? cap_timer_ids * 2 : 16;
        Timer **p = realloc(timer_by_id, cap * sizeof *p);
        if (!p)
            return JS_ThrowOutOfMemory(c);
        timer_by_id = p;
        cap_timer_ids = cap;
    }
    Timer *t = calloc(1, sizeof *t);
    int extra = argc > 2 ? argc - 2 : 0;
    if (!t || (extra && !(t->argv = calloc((size_t)extra, sizeof *t->argv)))) {
        free(t);
        return JS_ThrowOutOfMemory(c);
    }
    t->id = (int64_t)++n_timer_ids;
    timer_by_id[t->id - 1] = t;
    t->interval = magic ? (int64_t)(ms * 1e6) : 0;
    t->due = monotonic_ns() + (int64_t)(ms * 1e6);
    t->func = JS_DupValue(c, argv[0]);
    t->argc = extra;
    for (int i = 0; i < extra; i++)
        t->argv[i] = JS_DupValue(c, argv[i + 2]);
    if (!heap_push(t)) {
        timer_free(t);
        return JS_ThrowOutOfMemory(c);
    }
    return JS_NewInt64(c, t->id);
}

/* clearTimeout(id) / clearInterval(id); unknown ids are ignored. */
static JSValue js_clear_timer(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    int64_t id;
    if (argc < 1 || !JS_IsNumber(argv[0]) || JS_ToInt64(c, &id, argv[0]))
        return JS_UNDEFINED;
    if (id >= 1 && (uint64_t)id <= n_timer_ids && timer_by_id[id - 1]) {
        Timer *t = timer_by_id[id - 1];
        heap_remove(t->pos);
        timer_free(t);
    }
    return JS_UNDEFINED;
}

/* Drops every pending timer and starts the ids afresh. */
static void clear_timers(void)
{
    while (n_timers > 0)
        timer_free(heap_remove(n_timers - 1));
    free(timer_by_id);
    timer_by_id = NULL;
    n_timer_ids = cap_timer_ids = 0;
}

static JSValue microtask_job(JSContext *c, int argc, JSValueConst *argv)
{
    (void)argc;
    JSValue r = JS_Call(c, argv[0], JS_UNDEFINED, 0, NULL);
    if (JS_IsException(r))
        return r;
    JS_FreeValue(c, r);
    return JS_UNDEFINED;
}

static JSValue js_queue_microtask(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    if (argc < 1 || !JS_IsFunction(c, argv[0]))
        return JS_ThrowTypeError(c, "The \"callback\" argument must be of type function");
    if (JS_EnqueueJob(c, microtask_job, 1, argv) < 0)
        return JS_EXCEPTION;
    return JS_UNDEFINED;
}

/* ------------------------------------------------------------------------ */
/* Host calls                                                               */

/* JSON text of the arguments object (`{}` when absent); -1 on exception. */
static int args_json(JSContext *c, int argc, JSValueConst *argv, Buf *out)
{
    JSValue json;
    if (argc > 1 && !JS_IsUndefined(argv[1]))
        json = JS_JSONStringify(c, argv[1], JS_UNDEFINED, JS_UNDEFINED);
    else
        json = JS_NewString(c, "{}");
    if (JS_IsException(json))
        return -1;
    if (!JS_IsString(json)) {
        JS_FreeValue(c, json);
        JS_ThrowTypeError(c, "host call arguments must be JSON-serializable");
        return -1;
    }
    int ret = put_to_string(out, json);
    JS_FreeValue(c, json);
    return ret;
}

/* The prefix of the host names of built-in module functions. */
#define MODULE_PREFIX "goru:"

/* Throws the Error for a host error message. A built-in module's errors are
   JSON `{"type": "PermissionError", "message": "..."}`: the Error takes that
   name (when it is a plain identifier) and message. */
static JSValue throw_host_error(JSContext *c, const char *text, size_t len, bool module)
{
    JSValue err = JS_NewError(c);
    if (JS_IsException(err))
        return err;
    JSValue message = JS_NewStringLen(c, text, len);
    JSValue name = JS_UNDEFINED;
    if (module) {
        JSValue parsed = JS_ParseJSON(c, text, len, "<host error>");
        if (JS_IsException(parsed)) {
            clear_catchable_exception();
        } else if (JS_IsObject(parsed)) {
            char *type = get_string_prop(parsed, "type");
            JSValue msg = JS_GetPropertyStr(c, parsed, "message");
            bool ident = type && *type;
            for (const char *p = type; ident && *p; p++)
                ident = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
            if (ident && JS_IsString(msg)) {
                name = JS_NewString(c, type);
                JS_FreeValue(c, message);
                message = JS_DupValue(c, msg);
            }
            free(type);
            JS_FreeValue(c, msg);
        }
        JS_FreeValue(c, parsed);
    }
    JS_DefinePropertyValueStr(c, err, "message", message, JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    if (!JS_IsUndefined(name))
        JS_DefinePropertyValueStr(c, err, "name", name, JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    return JS_Throw(c, err);
}

/* Turns a host reply into a JS value, or a thrown Error carrying the host's
   message (for a built-in module, `module`, with the error's type). Takes
   ownership of `reply`. */
static JSValue host_reply(JSContext *c, bool ok, guest_string_t *reply, bool module)
{
    JSValue v;
    if (!ok) {
        /* JS_ParseJSON needs a NUL after the text; host strings have none */
        char *text = malloc(reply->len + 1);
        if (!text) {
            v = JS_ThrowOutOfMemory(c);
        } else {
            memcpy(text, reply->ptr, reply->len);
            text[reply->len] = '\0';
            v = throw_host_error(c, text, reply->len, module);
            free(text);
        }
    } else if (reply->len == 0) {
        v = JS_UNDEFINED;
    } else {
        /* JS_ParseJSON needs a NUL after the text; host strings have none */
        char *text = malloc(reply->len + 1);
        if (!text) {
            v = JS_ThrowOutOfMemory(c);
        } else {
            memcpy(text, reply->ptr, reply->len);
            text[reply->len] = '\0';
            v = JS_ParseJSON(c, text, reply->len, "<host reply>");
            free(text);
        }
    }
    guest_string_free(reply);
    return v;
}

/* The host name of a call: the name user code gave `call`/`asyncCall`,
   which may not claim a built-in module's, or for a module's wrapper
   (`module`), the module function's name under MODULE_PREFIX. */
static int call_name(JSContext *c, JSValueConst name, bool module, Buf *out)
{
    if (!JS_IsString(name)) {
        JS_ThrowTypeError(c, "the host function name must be a string");
        return -1;
    }
    if (module)
        buf_puts(out, MODULE_PREFIX);
    if (put_to_string(out, name) < 0)
        return -1;
    if (!module && strncmp(buf_str(out), MODULE_PREFIX, strlen(MODULE_PREFIX)) == 0) {
        JS_ThrowTypeError(c, "`%s` is reserved for goru's built-in modules", buf_str(out));
        return -1;
    }
    return 0;
}

/* call(name, args) (magic 0) and the wrappers' host.moduleCall (magic 1):
   calls a host function and returns its parsed result. */
static JSValue js_call(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic)
{
    (void)this_val;
    Buf name = {0}, args = {0};
    if (call_name(c, argc > 0 ? argv[0] : JS_UNDEFINED, magic, &name) < 0 || args_json(c, argc, argv, &args) < 0) {
        buf_free(&name);
        buf_free(&args);
        return JS_EXCEPTION;
    }
    if (name.oom || args.oom) {
        buf_free(&name);
        buf_free(&args);
        return JS_ThrowOutOfMemory(c);
    }
    guest_string_t n = {(uint8_t *)name.data, name.len}, a = {(uint8_t *)args.data, args.len};
    guest_string_t reply = {0}; /* the result or the error: one is written */
    bool ok = goru_sandbox_host_call(&n, &a, &reply, &reply);
    buf_free(&name);
    buf_free(&args);
    return host_reply(c, ok, &reply, magic);
}

/* asyncCall(name, args) queues the call and returns a promise. The event
   loop sends every call queued while JS was running as one `call-batch`
   once no JS job is left, so `Promise.all` over several calls costs one
   round trip and the host may run them concurrently. */
typedef struct {
    Buf name, args;
    bool module; /* a built-in module's call: its errors carry a type */
    JSValue resolve, reject;
} PendingCall;

static PendingCall *pending_calls;
static size_t n_pending_calls, cap_pending_calls;

/* asyncCall(name, args) (magic 0) and host.asyncModuleCall (magic 1). */
static JSValue js_async_call(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic)
{
    (void)this_val;
    if (n_pending_calls == cap_pending_calls) {
        size_t cap = cap_pending_calls ? cap_pending_calls * 2 : 8;
        PendingCall *p = realloc(pending_calls, cap * sizeof *p);
        if (!p)
            return JS_ThrowOutOfMemory(c);
        pending_calls = p;
        cap_pending_calls = cap;
    }
    PendingCall *pc = &pending_calls[n_pending_calls];
    *pc = (PendingCall){.module = magic};
    if (call_name(c, argc > 0 ? argv[0] : JS_UNDEFINED, magic, &pc->name) < 0 ||
        args_json(c, argc, argv, &pc->args) < 0) {
        buf_free(&pc->name);
        buf_free(&pc->args);
        return JS_EXCEPTION;
    }
    JSValue funcs[2];
    JSValue promise = JS_NewPromiseCapability(c, funcs);
    if (JS_IsException(promise) || pc->name.oom || pc->args.oom) {
        buf_free(&pc->name);
        buf_free(&pc->args);
        if (!JS_IsException(promise)) {
            JS_FreeValue(c, promise);
            JS_FreeValue(c, funcs[0]);
            JS_FreeValue(c, funcs[1]);
            return JS_ThrowOutOfMemory(c);
        }
        return JS_EXCEPTION;
    }
    pc->resolve = funcs[0];
    pc->reject = funcs[1];
    n_pending_calls++;
    return promise;
}

/* Settles a queued call's promise with the host's reply (its handlers run
   later, as jobs). -1, with the exception pending, if that failed. */
static int settle_call(PendingCall *pc, bool ok, guest_string_t *reply)
{
    JSValue v = host_reply(ctx, ok, reply, pc->module);
    JSValue fn = pc->resolve;
    if (JS_IsException(v)) {
        v = JS_GetException(ctx);
        if (JS_IsUncatchableError(v)) {
            JS_Throw(ctx, v);
            return -1;
        }
        fn = pc->reject;
    }
    JSValue r = JS_Call(ctx, fn, JS_UNDEFINED, 1, &v);
    JS_FreeValue(ctx, v);
    if (JS_IsException(r))
        return -1;
    JS_FreeValue(ctx, r);
    return 0;
}

static void free_pending_call(PendingCall *pc)
{
    buf_free(&pc->name);
    buf_free(&pc->args);
    JS_FreeValue(ctx, pc->resolve);
    JS_FreeValue(ctx, pc->reject);
}

/* Sends the queued calls (one `call`, or one `call-batch` for several) and
   settles their promises. -1 if settling raised an uncatchable exception. */
static int flush_pending_calls(void)
{
    size_t n = n_pending_calls;
    PendingCall *calls = pending_calls;
    pending_calls = NULL;
    n_pending_calls = cap_pending_calls = 0;
    int ret = 0;
    if (n == 1) {
        guest_string_t name = {(uint8_t *)calls[0].name.data, calls[0].name.len};
        guest_string_t args = {(uint8_t *)calls[0].args.data, calls[0].args.len};
        guest_string_t reply = {0};
        bool ok = goru_sandbox_host_call(&name, &args, &reply, &reply);
        ret = settle_call(&calls[0], ok, &reply);
    } else if (n > 1) {
        guest_tuple2_string_string_t *list = malloc(n * sizeof *list);
        if (!list) {
            JS_ThrowOutOfMemory(ctx);
            ret = -1;
        } else {
            for (size_t i = 0; i < n; i++) {
                list[i].f0 = (guest_string_t){(uint8_t *)calls[i].name.data, calls[i].name.len};
                list[i].f1 = (guest_string_t){(uint8_t *)calls[i].args.data, calls[i].args.len};
            }
            guest_list_tuple2_string_string_t arg = {list, n};
            goru_sandbox_host_list_result_string_string_t results = {0};
            goru_sandbox_host_call_batch(&arg, &results);
            free(list);
            for (size_t i = 0; i < n; i++) {
                guest_string_t reply = {0};
                bool ok = false;
                if (i < results.len) {
                    ok = !results.ptr[i].is_err;
                    reply = ok ? results.ptr[i].val.ok : results.ptr[i].val.err;
                } else {
                    guest_string_dup(&reply, "the host returned fewer results than calls");
                }
                if (ret == 0)
                    ret = settle_call(&calls[i], ok, &reply);
                else
                    guest_string_free(&reply);
            }
            /* the replies were taken over (and freed) one by one above */
            for (size_t i = n; i < results.len; i++)
                goru_sandbox_host_result_string_string_free(&results.ptr[i]);
            if (results.len > 0)
                free(results.ptr);
        }
    }
    for (size_t i = 0; i < n; i++)
        free_pending_call(&calls[i]);
    free(calls);
    return ret;
}

static void drop_pending_calls(void)
{
    for (size_t i = 0; i < n_pending_calls; i++)
        free_pending_call(&pending_calls[i]);
    free(pending_calls);
    pending_calls = NULL;
    n_pending_calls = cap_pending_calls = 0;
}

/* ------------------------------------------------------------------------ */
/* Math.random                                                              */

/* QuickJS seeds Math.random from the clock, which two instances started in
   the same microsecond (or under a fixed clock) share; this one is seeded
   from WASI random_get. xorshift128+. */
static uint64_t rng[2];

static void seed_random(void)
{
    if (getentropy(rng, sizeof rng) != 0 || (rng[0] | rng[1]) == 0) {
        rng[0] = (uint64_t)monotonic_ns() | 1;
        rng[1] = (uint64_t)time(NULL) ^ 0x9E3779B97F4A7C15ull;
    }
}

static JSValue js_math_random(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    (void)this_val;
    (void)argc;
    (void)argv;
    uint64_t s1 = rng[0], s0 = rng[1];
    rng[0] = s0;
    s1 ^= s1 << 23;
    rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    uint64_t x = rng[1] + s0;
    return JS_NewFloat64(c, (double)(x >> 11) * 0x1.0p-53);
}

/* ------------------------------------------------------------------------ */
/* Unhandled rejections and interrupts                                      */

typedef struct Rejection {
    struct Rejection *next;
    JSValue promise, reason;
} Rejection;

/* Rejected promises without a handler, newest first: a handler attached
   soon after the rejection finds its entry at once. */
static Rejection *rejections;

static void free_rejection(Rejection *r)
{
    JS_FreeValue(ctx, r->promise);
    JS_FreeValue(ctx, r->reason);
    free(r);
}

/* QuickJS reports each rejection that has no handler once, and later the
   handler if one gets attached: keep the ones still unhandled. */
static void track_rejection(JSContext *c, JSValueConst promise, JSValueConst reason, bool is_handled, void *opaque)
{
    (void)opaque;
    if (is_handled) {
        Rejection **p = &rejections;
        while (*p && JS_VALUE_GET_PTR((*p)->promise) != JS_VALUE_GET_PTR(promise))
            p = &(*p)->next;
        if (*p) {
            Rejection *r = *p;
            *p = r->next;
            free_rejection(r);
        }
        return;
    }
    Rejection *r = malloc(sizeof *r);
    if (r) {
        r->promise = JS_DupValue(c, promise);
        r->reason = JS_DupValue(c, reason);
        r->next = rejections;
        rejections = r;
    }
}

/* The reason of the oldest rejection still unhandled; undefined if none. */
static JSValue oldest_unhandled_reason(void)
{
    Rejection *r = rejections;
    while (r && r->next)
        r = r->next;
    return r ? JS_DupValue(ctx, r->reason) : JS_UNDEFINED;
}

static void clear_rejections(void)
{
    while (rejections) {
        Rejection *r = rejections;
        rejections = r->next;
        free_rejection(r);
    }
}

/* Polled by QuickJS while JS runs: stops code that keeps running after
   std.exit was called from somewhere that swallowed its exception. */
static int interrupt_handler(JSRuntime *r, void *opaque)
{
    (void)r;
    (void)opaque;
    return exit_requested;
}

/* ------------------------------------------------------------------------ */
/* Outcomes                                                                 */

/* A heap copy for the outcome (cabi_post_run frees what has a length). */
static void set_string(guest_string_t *s, const char *p, size_t n)
{
    s->ptr = NULL;
    s->len = 0;
    if (n == 0)
        return;
    s->ptr = malloc(n);
    if (!s->ptr)
        return;
    memcpy(s->ptr, p, n);
    s->len = n;
}

/* Takes each text with its length: a NUL byte inside is kept. */
static void outcome_exception_text(guest_outcome_t *ret, const Buf *type, const Buf *message, const Buf *traceback)
{
    ret->tag = GUEST_OUTCOME_EXCEPTION;
    set_string(&ret->val.exception.type_name, buf_str(type), type->len);
    set_string(&ret->val.exception.message, buf_str(message), message->len);
    set_string(&ret->val.exception.traceback, buf_str(traceback), traceback->len);
}

/* The outcome for an uncaught exception: type, message, and a traceback
   "Type: message\n    at f (file.js:3:9)..." from the error's stack, whose
   positions are the user's own since the code ran unwrapped. */
static void outcome_exception(guest_outcome_t *ret, JSValueConst exc)
{
    Buf type = {0}, message = {0}, traceback = {0};
    if (JS_IsError(exc)) {
        if (!put_string_prop(&type, exc, "name") || type.len == 0)
            buf_puts(&type, "Error");
        JSValue msg = JS_GetPropertyStr(ctx, exc, "message");
        if (!JS_IsException(msg) && !JS_IsUndefined(msg) && put_to_string(&message, msg) < 0)
            clear_catchable_exception();
        if (JS_IsException(msg))
            clear_catchable_exception();
        JS_FreeValue(ctx, msg);
        Inspect I = {.max_depth = INSPECT_DEPTH};
        if (put_error(&I, &traceback, exc, true) < 0)
            clear_catchable_exception();
    } else {
        /* a thrown non-Error: report it as an Error whose message is the value */
        buf_puts(&type, "Error");
        if (format_value(&message, exc, true, INSPECT_DEPTH) < 0)
            clear_catchable_exception();
        buf_puts(&traceback, "Uncaught ");
        if (format_value(&traceback, exc, false, INSPECT_DEPTH) < 0)
            clear_catchable_exception();
    }
    outcome_exception_text(ret, &type, &message, &traceback);
    buf_free(&type);
    buf_free(&message);
    buf_free(&traceback);
}

/* ------------------------------------------------------------------------ */
/* The event loop                                                           */

typedef enum { RUN_OK, RUN_EXCEPTION, RUN_EXIT } RunStatus;

/* What ended the run when it was an exception; owned. */
static JSValue run_exception;

/* Fails the run with the exception pending in the context, unless exit was
   requested: then the exception is only the vehicle of std.exit. */
static RunStatus fail_with_pending(void)
{
    JSValue e = JS_GetException(ctx);
    if (exit_requested) {
        JS_FreeValue(ctx, e);
        return RUN_EXIT;
    }
    run_exception = e;
    return RUN_EXCEPTION;
}

static RunStatus run_jobs(void)
{
    for (;;) {
        if (exit_requested)
            return RUN_EXIT;
        JSContext *c;
        int r = JS_ExecutePendingJob(rt, &c);
        if (r == 0)
            return RUN_OK;
        if (r < 0)
            return fail_with_pending();
    }
}

static void sleep_until(int64_t due)
{
    for (;;) {
        int64_t left = due - monotonic_ns();
        if (left <= 0)
            return;
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        nanosleep(&ts, NULL);
    }
}

/* Runs jobs, host calls and timers until none is left, the main promise
   (the script's or module's completion) rejects, a rejection is left
   unhandled, or exit is requested. */
static RunStatus event_loop(JSValueConst main_promise)
{
    for (;;) {
        RunStatus s = run_jobs();
        if (s != RUN_OK)
            return s;
        if (JS_IsPromise(main_promise) && JS_PromiseState(ctx, main_promise) == JS_PROMISE_REJECTED) {
            run_exception = JS_PromiseResult(ctx, main_promise);
            return RUN_EXCEPTION;
        }
        if (rejections) {
            run_exception = oldest_unhandled_reason();
            return RUN_EXCEPTION;
        }
        if (n_pending_calls > 0) {
            if (flush_pending_calls() < 0)
                return fail_with_pending();
            continue;
        }
        if (n_timers == 0)
            return RUN_OK;
        sleep_until(timers[0]->due);
        Timer *t = heap_remove(0);
        /* Hold the callback and its arguments: clearInterval inside the
           callback frees the timer while it runs. */
        JSValue func = JS_DupValue(ctx, t->func);
        int argc = t->argc;
        JSValue *argv = argc ? malloc((size_t)argc * sizeof *argv) : NULL;
        if (argc && !argv) {
            JS_FreeValue(ctx, func);
            timer_free(t);
            JS_ThrowOutOfMemory(ctx);
            return fail_with_pending();
        }
        for (int i = 0; i < argc; i++)
            argv[i] = JS_DupValue(ctx, t->argv[i]);
        if (t->interval > 0) {
            t->due = monotonic_ns() + t->interval;
            if (!heap_push(t))
                timer_free(t);
        } else {
            timer_free(t);
        }
        JSValue r = JS_Call(ctx, func, JS_UNDEFINED, argc, argv);
        JS_FreeValue(ctx, func);
        for (int i = 0; i < argc; i++)
            JS_FreeValue(ctx, argv[i]);
        free(argv);
        if (JS_IsException(r))
            return fail_with_pending();
        JS_FreeValue(ctx, r);
    }
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */

static JSValue get_path(JSValueConst root, const char *a, const char *b)
{
    JSValue obj = JS_GetPropertyStr(ctx, root, a);
    if (!b)
        return obj;
    JSValue v = JS_GetPropertyStr(ctx, obj, b);
    JS_FreeValue(ctx, obj);
    return v;
}

/* global[ctor].prototype[method] */
static JSValue get_method(JSValueConst global, const char *ctor, const char *method)
{
    JSValue proto = get_path(global, ctor, "prototype");
    JSValue fn = JS_GetPropertyStr(ctx, proto, method);
    JS_FreeValue(ctx, proto);
    return fn;
}

/* Properties the glue adds are writable and configurable but, like the
   built-ins, not enumerable: `Object.keys(globalThis)` stays the user's. */
static void define_value(JSValueConst obj, const char *name, JSValue value)
{
    JS_DefinePropertyValueStr(ctx, obj, name, value, JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
}

static void set_function(JSValueConst obj, const char *name, JSCFunction *fn, int length)
{
    define_value(obj, name, JS_NewCFunction(ctx, fn, name, length));
}

static void set_magic_function(JSValueConst obj, const char *name, JSCFunctionMagic *fn, int length, int magic)
{
    define_value(obj, name, JS_NewCFunctionMagic(ctx, fn, name, length, JS_CFUNC_generic_magic, magic));
}

/* The object the module wrappers receive as `host`; user code never sees it. */
static JSValue module_host;

/* Getter of a module's global (magic: its index in goru_modules): evaluates
   the module's wrapper, which defines the global as a plain value, and
   returns that. Modules are set up on first use, so a fresh sandbox does not
   pay for the ones it never touches. */
static JSValue js_module_getter(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic)
{
    (void)this_val;
    (void)argc;
    (void)argv;
    const char *name = goru_modules[magic].name;
    char filename[64];
    snprintf(filename, sizeof filename, "<goru:%s>", name);
    JSValue global = JS_GetGlobalObject(c);
    /* plain `undefined` first, so a wrapper that fails cannot recurse here */
    JS_DefinePropertyValueStr(c, global, name, JS_UNDEFINED, JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    JSValue wrapper = JS_Eval(c, goru_modules[magic].source, goru_modules[magic].len, filename, JS_EVAL_TYPE_GLOBAL);
    JSValue result = JS_IsException(wrapper) ? wrapper : JS_Call(c, wrapper, JS_UNDEFINED, 1, &module_host);
    JS_FreeValue(c, wrapper);
    if (!JS_IsException(result)) {
        JS_FreeValue(c, result);
        result = JS_GetPropertyStr(c, global, name);
    }
    JS_FreeValue(c, global);
    return result;
}

/* Setter of a module's global before its first use: user code may claim the
   name for itself. */
static JSValue js_module_setter(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic)
{
    (void)this_val;
    JSValue global = JS_GetGlobalObject(c);
    int r = JS_DefinePropertyValueStr(c, global, goru_modules[magic].name, JS_DupValue(c, argc > 0 ? argv[0] : JS_UNDEFINED),
                                      JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    JS_FreeValue(c, global);
    return r < 0 ? JS_EXCEPTION : JS_UNDEFINED;
}

/* Installs `kv`, `fs`, `http`... as lazily set-up globals. */
static void install_modules(JSValueConst global)
{
    module_host = JS_NewObject(ctx);
    set_magic_function(module_host, "moduleCall", js_call, 2, 1);
    set_magic_function(module_host, "asyncModuleCall", js_async_call, 2, 1);
    for (size_t i = 0; i < countof(goru_modules); i++) {
        const char *name = goru_modules[i].name;
        JSAtom atom = JS_NewAtom(ctx, name);
        JS_DefinePropertyGetSet(
            ctx, global, atom,
            JS_NewCFunctionMagic(ctx, js_module_getter, name, 0, JS_CFUNC_generic_magic, (int)i),
            JS_NewCFunctionMagic(ctx, js_module_setter, name, 1, JS_CFUNC_generic_magic, (int)i),
            JS_PROP_CONFIGURABLE);
        JS_FreeAtom(ctx, atom);
    }
}

static void install_globals(const guest_options_t *options)
{
    JSValue global = JS_GetGlobalObject(ctx);

    builtin_string = get_path(global, "String", NULL);
    builtin_object_to_string = get_method(global, "Object", "toString");
    builtin_function_to_string = get_method(global, "Function", "toString");
    builtin_date_to_iso = get_method(global, "Date", "toISOString");
    builtin_number_value_of = get_method(global, "Number", "valueOf");
    builtin_string_value_of = get_method(global, "String", "valueOf");
    builtin_boolean_value_of = get_method(global, "Boolean", "valueOf");
    builtin_map_entries = get_method(global, "Map", "entries");
    builtin_set_values = get_method(global, "Set", "values");
    builtin_parse_int = get_path(global, "parseInt", NULL);
    builtin_parse_float = get_path(global, "parseFloat", NULL);
    JSValue tag_symbol = get_path(global, "Symbol", "toStringTag");
    atom_to_string_tag = JS_ValueToAtom(ctx, tag_symbol);
    JS_FreeValue(ctx, tag_symbol);

    JSValue console = JS_NewObject(ctx);
    set_magic_function(console, "log", js_console_write, 0, 1);
    set_magic_function(console, "info", js_console_write, 0, 1);
    set_magic_function(console, "debug", js_console_write, 0, 1);
    set_magic_function(console, "dir", js_console_write, 0, 1);
    set_magic_function(console, "error", js_console_write, 0, 2);
    set_magic_function(console, "warn", js_console_write, 0, 2);
    set_function(console, "trace", js_console_trace, 0);
    set_function(console, "assert", js_console_assert, 0);
    define_value(global, "console", console);
    set_magic_function(global, "print", js_console_write, 0, 1);

    define_value(global, "std", new_std_object());
    set_function(global, "readline", js_readline, 0);

    JSValue args = JS_NewArray(ctx);
    for (size_t i = 0; i < options->argv.len; i++)
        JS_SetPropertyInt64(ctx, args, (int64_t)i,
                            JS_NewStringLen(ctx, (const char *)options->argv.ptr[i].ptr, options->argv.ptr[i].len));
    define_value(global, "scriptArgs", args);

    set_magic_function(global, "setTimeout", js_set_timer, 1, 0);
    set_magic_function(global, "setInterval", js_set_timer, 1, 1);
    set_function(global, "clearTimeout", js_clear_timer, 1);
    set_function(global, "clearInterval", js_clear_timer, 1);
    set_function(global, "queueMicrotask", js_queue_microtask, 1);

    set_magic_function(global, "call", js_call, 2, 0);
    set_magic_function(global, "asyncCall", js_async_call, 2, 0);
    install_modules(global);

    JSValue math = JS_GetPropertyStr(ctx, global, "Math");
    set_function(math, "random", js_math_random, 0);
    JS_FreeValue(ctx, math);

    JS_FreeValue(ctx, global);
    if (JS_HasException(ctx))
        abort(); /* only out of memory gets here, before any user code ran */
}

static void create_instance(const guest_options_t *options)
{
    rt = JS_NewRuntime();
    if (!rt)
        abort();
    /* QuickJS measures the stack from here, close to the top of the stack
       (linked first, growing down to address 0); run() measures again. */
    JS_SetMaxStackSize(rt, GORU_STACK_SIZE - GORU_STACK_RESERVE);
    JS_SetHostPromiseRejectionTracker(rt, track_rejection, NULL);
    JS_SetInterruptHandler(rt, interrupt_handler, NULL);
    JS_SetModuleLoaderFunc(rt, NULL, load_module, NULL);
    ctx = JS_NewContext(rt);
    if (!ctx)
        abort();
    seed_random();
    install_globals(options);
}

void exports_guest_init(guest_options_t *options)
{
    if (!rt)
        create_instance(options);
    guest_options_free(options);
}

/* ------------------------------------------------------------------------ */
/* run                                                                      */

/* A NUL-terminated copy of a string the host passed in (it has no NUL). */
static char *copy_string(const guest_string_t *s)
{
    char *p = malloc(s->len + 1);
    if (p) {
        memcpy(p, s->ptr, s->len);
        p[s->len] = '\0';
    }
    return p;
}

/* Whether code runs as an ES module: `.mjs` files, and code with a line
   that starts with an import or export declaration (`import(` and
   `import.meta` excepted). Everything else is a script, so that sloppy-mode
   programs work and top-level `var`s land on globalThis. */
static bool is_module(const char *filename, const char *src)
{
    size_t fn = strlen(filename);
    if (fn >= 4 && strcmp(filename + fn - 4, ".mjs") == 0)
        return true;
    if (fn >= 4 && strcmp(filename + fn - 4, ".cjs") == 0)
        return false;
    for (const char *line = src; line;) {
        const char *p = line;
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "import", 6) == 0 && (p[6] == ' ' || p[6] == '{' || p[6] == '*' || p[6] == '"' || p[6] == '\''))
            return true;
        if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '{' || p[6] == '*'))
            return true;
    }
    return false;
}

/* Where a SyntaxError points, from the "    at file:line:col" first line of
   its stack. */
static bool syntax_error_position(JSValueConst exc, int *line, int *col)
{
    char *stack = get_string_prop(exc, "stack");
    bool ok = false;
    if (stack) {
        char *end = strchr(stack, '\n');
        if (end)
            *end = '\0';
        char *c = strrchr(stack, ':');
        if (c && c > stack) {
            *c = '\0';
            char *l = strrchr(stack, ':');
            if (l) {
                *line = atoi(l + 1);
                *col = atoi(c + 1);
                ok = *line > 0;
            }
        }
        free(stack);
    }
    return ok;
}

/* Whether a SyntaxError only says the entry stopped early: it points past
   the last non-blank character, or is an open block comment or template. */
static bool syntax_error_is_incomplete(JSValueConst exc, const char *src, size_t len)
{
    char *name = get_string_prop(exc, "name");
    char *message = get_string_prop(exc, "message");
    bool syntax = name && strcmp(name, "SyntaxError") == 0;
    bool incomplete = false;
    int line, col;
    if (syntax && message && strcmp(message, "unexpected end of comment") == 0) {
        incomplete = true;
    } else if (syntax && syntax_error_position(exc, &line, &col)) {
        /* the last non-blank character: its line, and its column both in
           bytes and in code points (whichever QuickJS counted in) */
        size_t last = len;
        while (last > 0 && strchr(" \t\r\n", src[last - 1]))
            last--;
        int last_line = 1;
        size_t line_start = 0;
        for (size_t i = 0; i < last; i++) {
            if (src[i] == '\n') {
                last_line++;
                line_start = i + 1;
            }
        }
        int end_bytes = (int)(last - line_start) + 1;
        int end_chars = (int)text_width(src + line_start, last - line_start) + 1;
        if (message && strcmp(message, "unexpected end of string") == 0) {
            /* an open template literal continues; an open quote does not */
            size_t at = 0;
            for (int l = 1; l < line && at < len; at++)
                if (src[at] == '\n')
                    l++;
            at += (size_t)(col - 1);
            incomplete = at < len && src[at] == '`';
        } else {
            incomplete = line > last_line || (line == last_line && (col >= end_bytes || col >= end_chars));
        }
    }
    free(name);
    free(message);
    return incomplete;
}

static void run_check_complete(const char *src, size_t len, const char *filename, guest_outcome_t *ret)
{
    JSValue v = JS_Eval(ctx, src, len, filename, JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_ASYNC | JS_EVAL_FLAG_COMPILE_ONLY);
    if (!JS_IsException(v)) {
        JS_FreeValue(ctx, v);
        ret->tag = GUEST_OUTCOME_OK;
        return;
    }
    JSValue exc = JS_GetException(ctx);
    if (syntax_error_is_incomplete(exc, src, len))
        ret->tag = GUEST_OUTCOME_INCOMPLETE;
    else
        outcome_exception(ret, exc);
    JS_FreeValue(ctx, exc);
}

static void run_code(const char *src, size_t len, const char *filename, bool repl, guest_outcome_t *ret)
{
    bool module = !repl && is_module(filename, src);
    int flags = module ? JS_EVAL_TYPE_MODULE : JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_ASYNC;
    JSValue result = JS_Eval(ctx, src, len, filename, flags);
    RunStatus status;
    if (exit_requested)
        status = RUN_EXIT;
    else if (JS_IsException(result))
        status = fail_with_pending();
    else
        status = event_loop(result);

    switch (status) {
    case RUN_EXIT:
        ret->tag = GUEST_OUTCOME_EXIT;
        ret->val.exit = exit_code;
        break;
    case RUN_EXCEPTION:
        outcome_exception(ret, run_exception);
        JS_FreeValue(ctx, run_exception);
        run_exception = JS_UNDEFINED;
        break;
    case RUN_OK:
        ret->tag = GUEST_OUTCOME_OK;
        /* a script's completion value arrives as `{value}` in its promise */
        if (repl && JS_PromiseState(ctx, result) == JS_PROMISE_FULFILLED) {
            JSValue wrapper = JS_PromiseResult(ctx, result);
            JSValue value = JS_GetPropertyStr(ctx, wrapper, "value");
            JS_FreeValue(ctx, wrapper);
            if (JS_IsException(value)) {
                clear_catchable_exception();
            } else if (!JS_IsUndefined(value)) {
                Buf repr = {0};
                if (format_value(&repr, value, false, INSPECT_DEPTH) < 0 || repr.oom) {
                    /* user code ran while formatting (a toStringTag getter) */
                    if (repr.oom && !JS_HasException(ctx))
                        JS_ThrowOutOfMemory(ctx);
                    JSValue exc = JS_GetException(ctx);
                    if (exit_requested) {
                        ret->tag = GUEST_OUTCOME_EXIT;
                        ret->val.exit = exit_code;
                    } else {
                        outcome_exception(ret, exc);
                    }
                    JS_FreeValue(ctx, exc);
                } else {
                    ret->val.ok.is_some = true;
                    set_string(&ret->val.ok.val, buf_str(&repr), repr.len);
                }
                buf_free(&repr);
                JSValue global = JS_GetGlobalObject(ctx);
                JS_SetPropertyStr(ctx, global, "_", JS_DupValue(ctx, value));
                JS_FreeValue(ctx, global);
                if (JS_HasException(ctx))
                    clear_catchable_exception();
            }
            JS_FreeValue(ctx, value);
        }
        break;
    }
    JS_FreeValue(ctx, result);
    /* Nothing of this run may fire in the next one. */
    clear_timers();
    clear_rejections();
    drop_pending_calls();
    if (JS_HasException(ctx))
        JS_FreeValue(ctx, JS_GetException(ctx));
}

void exports_guest_run(guest_string_t *code, guest_mode_t mode, guest_string_t *filename, guest_outcome_t *ret)
{
    char *src = copy_string(code);
    char *name = copy_string(filename);
    size_t len = code->len;
    guest_string_free(code);
    guest_string_free(filename);
    memset(ret, 0, sizeof *ret);

    if (!rt) {
        /* the host skipped init: run with an empty scriptArgs rather than crash */
        guest_options_t none = {0};
        create_instance(&none);
    }
    if (!src || !name) {
        ret->tag = GUEST_OUTCOME_EXCEPTION;
        set_string(&ret->val.exception.type_name, "InternalError", strlen("InternalError"));
        set_string(&ret->val.exception.message, "out of memory", strlen("out of memory"));
        set_string(&ret->val.exception.traceback, "InternalError: out of memory",
                   strlen("InternalError: out of memory"));
    } else {
        /* this export's frame is the top of the stack QuickJS may use */
        JS_UpdateStackTop(rt);
        exit_requested = false;
        /* the host may have given this run new stdin: look again */
        in.eof = false;
        if (mode == GUEST_MODE_CHECK_COMPLETE)
            run_check_complete(src, len, name, ret);
        else
            run_code(src, len, name, mode == GUEST_MODE_REPL, ret);
    }
    free(src);
    free(name);
}
