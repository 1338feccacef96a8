/* The prompt-injection model's scan (extproc/ai_gateway/injection.py) in one pass over the text.
 *
 * The features are those of extproc/ai_gateway/prompt_features.py, which is the reference: tokens
 * are runs of word bytes or of mark bytes, each owns its unigram, its pair with the token before
 * and, for a word of 5 bytes or more, every 4-byte run inside it; a word in one of the model's
 * word classes also owns its class and the pair of its class with the nearest classed word at most
 * CLASS_GAP tokens before (a lookup in a small table per word). Each feature counts once per
 * block of `block` tokens. A window is two neighbouring blocks (one block for a short text), its
 * logit bias + (sum of weights) / sqrt(features); the scan returns the highest window logit, or
 * the first at or above `stop` without reading further (the verdict is certain by then).
 *
 * Nothing is allocated per token: a bucket's "seen in this block" mark is the block's number in
 * a stamp array. The kernel's own array serves calls that keep the GIL; a long text, scanned
 * without the GIL so other threads run meanwhile, gets an array of its own.
 * Any disagreement with prompt_features.py is a bug: tests/unit/test_injection_scan.py compares them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Constants of prompt_features.py. */
#define MULTIPLIER 0x01000193u
#define WORD_SALT 0x2545F491u
#define MARK_SALT 0x6C8E9CF5u
#define UNIGRAM_SALT 0x3C6EF372u
#define PAIR_SALT 0x1B873593u
#define GRAM_SALT 0x7F4A7C15u
#define PAIR_MULTIPLIER 0x9E3779B1u
#define BUCKET_MULTIPLIER 0x9E3779B1u
#define MIN_GRAM_WORD 5
#define CLASS_SALT 0x5BD1E995u
#define CLASS_GAP 4
#define MAX_CLASSES 255
enum { SEP = 0, WORD = 1, MARK = 2 };

#define RELEASE_GIL_BYTES (64 * 1024)

typedef struct {
    PyObject_HEAD
    Py_buffer weights;  /* float32 [2^bits], held for the kernel's lifetime */
    int bits;
    Py_ssize_t block;
    uint32_t *stamp;    /* used only under the GIL */
    uint32_t generation;
    uint32_t *class_keys;  /* word classes: open addressing, 2^class_bits slots; NULL without classes */
    unsigned char *class_ids;  /* 0: an empty slot */
    int class_bits;
} Scanner;

static unsigned char byte_class[256];
static unsigned char lower[256];

static void init_tables(void)
{
    for (int b = 0; b < 256; b++) {
        byte_class[b] = b >= 0x80 ? WORD : SEP;
        lower[b] = (unsigned char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
    }
    for (int b = '0'; b <= '9'; b++)
        byte_class[b] = WORD;
    for (int b = 'a'; b <= 'z'; b++)
        byte_class[b] = byte_class[b - 32] = WORD;
    for (const char *m = "<>[]#|/!{}()$"; *m; m++)
        byte_class[(unsigned char)*m] = MARK;
}

static inline uint32_t fmix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}

/* The class of data[i], with the bytes of U+2000-U+203F (E2 80 xx) and U+00A0 (C2 A0) as
 * separators: each byte checks whether it is one of the first three (two) of such a pair. */
static inline int class_at(const unsigned char *data, Py_ssize_t n, Py_ssize_t i)
{
    const unsigned char b = data[i];
    if (b < 0x80)
        return byte_class[b];
    if ((b == 0xE2 && i + 1 < n && data[i + 1] == 0x80) || (b == 0xC2 && i + 1 < n && data[i + 1] == 0xA0))
        return SEP;
    if (i >= 1 && ((data[i - 1] == 0xE2 && b == 0x80) || (data[i - 1] == 0xC2 && b == 0xA0)))
        return SEP;
    if (i >= 2 && data[i - 2] == 0xE2 && data[i - 1] == 0x80)
        return SEP;
    return WORD;
}

/* The class of a word token's value (0: none). */
static inline unsigned class_of(const uint32_t *keys, const unsigned char *ids, int bits, uint32_t token)
{
    const uint32_t mask = ((uint32_t)1 << bits) - 1;
    for (uint32_t slot = (token * BUCKET_MULTIPLIER) >> (32 - bits);; slot = (slot + 1) & mask) {
        if (!ids[slot] || keys[slot] == token)
            return ids[slot];
    }
}

/* The scan's state; the hot loop works on copies in locals (see scan). */
typedef struct {
    const uint32_t *class_keys;
    const unsigned char *class_ids;
    int class_bits;
    const float *weights;
    uint32_t *stamp;
    uint32_t generation;  /* the current block's number in stamp */
    int shift;
    double sum;           /* the current block's */
    uint32_t count;
} Block;

/* A feature's bucket, counted once per block, if `valid`. Branch-free: whether a bucket repeats
 * is as good as random, and so is whether a token has a previous one or is long enough. The state
 * is in locals (see scan), which the compiler keeps in registers. */
#define ADD_FEATURE(value, valid)                                                          \
    do {                                                                                   \
        const uint32_t id_ = ((value) * BUCKET_MULTIPLIER) >> shift;                       \
        const uint32_t seen_ = stamp[id_];                                                 \
        const uint32_t fresh_ = (seen_ != generation) & (valid);                           \
        stamp[id_] = (valid) ? generation : seen_;                                         \
        sum += fresh_ ? (double)weights[id_] : 0.0;                                        \
        count += fresh_;                                                                   \
    } while (0)

typedef struct {
    double bias, stop, best;
    Py_ssize_t windows;
    int stopped;
    /* the block before the current one */
    double previous_sum;
    uint32_t previous_count;
    int has_previous_block;
} Windows;

/* Scores one window; returns 1 when the scan can stop. */
static inline int window(Windows *w, double sum, uint32_t count)
{
    const double logit = w->bias + sum / sqrt(count > 1 ? (double)count : 1.0);
    w->windows++;
    if (w->windows == 1 || logit > w->best)
        w->best = logit;
    if (logit >= w->stop) {
        w->best = logit;
        w->stopped = 1;
    }
    return w->stopped;
}

static void next_block(Block *blk)
{
    blk->sum = 0.0;
    blk->count = 0;
    if (++blk->generation == 0) {  /* wrapped: stamps of 2^32 blocks ago would read as this block's */
        memset(blk->stamp, 0, sizeof(uint32_t) << (32 - blk->shift));
        blk->generation = 1;
    }
}

/* Closes the current block of `block` tokens; returns 1 when the scan can stop. */
static int close_block(Windows *w, Block *blk)
{
    int stop = 0;
    if (w->has_previous_block)
        stop = window(w, w->previous_sum + blk->sum, w->previous_count + blk->count);
    w->previous_sum = blk->sum;
    w->previous_count = blk->count;
    w->has_previous_block = 1;
    next_block(blk);
    return stop;
}

/* One pass over the bytes. A token's rolling hash and 4-byte runs are updated byte by byte; a
 * word's 4-byte runs are counted one byte late (a run is the word's only once the word is 5
 * bytes long) and its last one when it ends. */
static void scan(Windows *w, Block *blk, const unsigned char *data, Py_ssize_t n, Py_ssize_t block_tokens)
{
    const float *weights = blk->weights;
    uint32_t *stamp = blk->stamp;
    uint32_t generation = blk->generation;
    const int shift = blk->shift;
    double sum = 0.0;
    uint32_t count = 0;
    Py_ssize_t in_block = 0, blocks = 0;
    int kind = SEP, has_previous = 0;
    uint32_t rolling = 0, gram = 0, length = 0, previous = 0;
    Py_ssize_t tokens = 0, classed_at = -CLASS_GAP - 1;  /* the last classed word's token number */
    uint32_t classed = 0;  /* and its class */
    for (Py_ssize_t i = 0; i <= n; i++) {
        const int here = i < n ? class_at(data, n, i) : SEP;
        if (here != kind) {
            if (kind != SEP) {  /* a token of `length` bytes ends at i */
                ADD_FEATURE(gram ^ GRAM_SALT, (uint32_t)(kind == WORD && length >= MIN_GRAM_WORD));
                const uint32_t token = fmix32(rolling + length * PAIR_MULTIPLIER + (kind == WORD ? WORD_SALT : MARK_SALT));
                ADD_FEATURE(token ^ UNIGRAM_SALT, 1u);
                ADD_FEATURE((previous * PAIR_MULTIPLIER + token) ^ PAIR_SALT, (uint32_t)has_previous);
                previous = token;
                has_previous = 1;
                if (blk->class_ids && kind == WORD) {  /* rare: most words are in no class */
                    const uint32_t class = class_of(blk->class_keys, blk->class_ids, blk->class_bits, token);
                    if (class) {
                        ADD_FEATURE(fmix32(CLASS_SALT + class), 1u);
                        ADD_FEATURE(fmix32(CLASS_SALT + classed * 256u + class), (uint32_t)(tokens - classed_at <= CLASS_GAP));
                        classed = class;
                        classed_at = tokens;
                    }
                }
                tokens++;
                if (++in_block == block_tokens) {
                    in_block = 0;
                    blocks++;
                    blk->sum = sum;
                    blk->count = count;
                    blk->generation = generation;
                    const int stop = close_block(w, blk);
                    sum = 0.0;
                    count = 0;
                    generation = blk->generation;
                    if (stop)
                        return;
                }
            }
            kind = here;
            rolling = gram = length = 0;
        }
        if (kind == SEP)
            continue;
        const uint32_t b = lower[data[i]];
        length++;
        if (kind == WORD && length >= MIN_GRAM_WORD)  /* predictable: true along a long word */
            ADD_FEATURE(gram ^ GRAM_SALT, 1u);
        rolling = rolling * MULTIPLIER + b;
        gram = gram >> 8 | b << 24;
    }
    blk->sum = sum;
    blk->count = count;
    blk->generation = generation;
    if (in_block > 0) {  /* a partial last block: with the block before, or alone */
        if (w->has_previous_block)
            window(w, w->previous_sum + sum, w->previous_count + count);
        else
            window(w, sum, count);
    } else if (blocks == 1) {  /* exactly one full block: its own window */
        window(w, w->previous_sum, w->previous_count);
    } else if (blocks == 0) {  /* no token: the empty window */
        window(w, 0.0, 0);
    }
}

static void scanner_dealloc(Scanner *self)
{
    if (self->weights.obj)
        PyBuffer_Release(&self->weights);
    free(self->stamp);
    free(self->class_keys);
    free(self->class_ids);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The word classes from a dict {token value: class 1..MAX_CLASSES} into an open-addressing table
 * at most a quarter full. */
static int set_classes(Scanner *self, PyObject *classes)
{
    if (!PyDict_Check(classes)) {
        PyErr_SetString(PyExc_TypeError, "classes must be a dict of token value -> class");
        return -1;
    }
    const Py_ssize_t count = PyDict_Size(classes);
    if (count == 0)
        return 0;
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 4 * count)
        bits++;
    self->class_keys = calloc((size_t)1 << bits, sizeof(uint32_t));
    self->class_ids = calloc((size_t)1 << bits, 1);
    if (!self->class_keys || !self->class_ids) {
        PyErr_NoMemory();
        return -1;
    }
    self->class_bits = bits;
    const uint32_t mask = ((uint32_t)1 << bits) - 1;
    PyObject *key, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(classes, &position, &key, &value)) {
        const unsigned long token = PyLong_AsUnsignedLong(key);
        const long class = PyLong_AsLong(value);
        if (PyErr_Occurred())
            return -1;
        if (token > 0xFFFFFFFFul || class < 1 || class > MAX_CLASSES) {
            PyErr_SetString(PyExc_ValueError, "a word class maps a uint32 token value to 1..255");
            return -1;
        }
        uint32_t slot = ((uint32_t)token * BUCKET_MULTIPLIER) >> (32 - bits);
        while (self->class_ids[slot] && self->class_keys[slot] != (uint32_t)token)
            slot = (slot + 1) & mask;
        self->class_keys[slot] = (uint32_t)token;
        self->class_ids[slot] = (unsigned char)class;
    }
    return 0;
}

static PyObject *scanner_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"weights", "bits", "block", "classes", NULL};
    PyObject *weights, *classes = NULL;
    int bits;
    Py_ssize_t block;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oin|O", keywords, &weights, &bits, &block, &classes))
        return NULL;
    if (bits < 1 || bits > 24 || block < 1) {
        PyErr_SetString(PyExc_ValueError, "bits must be in 1..24 and block at least 1");
        return NULL;
    }
    Scanner *self = (Scanner *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    if (PyObject_GetBuffer(weights, &self->weights, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    if (strcmp(self->weights.format, "f") != 0 || self->weights.ndim != 1
        || self->weights.shape[0] != ((Py_ssize_t)1 << bits)) {
        PyErr_Format(PyExc_ValueError, "weights must be float32 [2^%d]", bits);
        Py_DECREF(self);
        return NULL;
    }
    self->stamp = calloc((size_t)1 << bits, sizeof(uint32_t));
    if (!self->stamp) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->bits = bits;
    self->block = block;
    if (classes && classes != Py_None && set_classes(self, classes) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* The UTF-8 bytes of text: a str's own UTF-8 form (kept by the str once made, so a later
 * text.encode() of it is a copy, not a second encoding), or a bytes-like object's buffer. */
static int utf8_of(PyObject *text, Py_buffer *view)
{
    if (PyUnicode_Check(text)) {
        Py_ssize_t size;
        const char *data = PyUnicode_AsUTF8AndSize(text, &size);  /* raises on a lone surrogate */
        return data ? PyBuffer_FillInfo(view, text, (void *)data, size, 1, PyBUF_SIMPLE) : -1;
    }
    return PyObject_GetBuffer(text, view, PyBUF_SIMPLE);
}

static PyObject *scanner_scan(Scanner *self, PyObject *args)
{
    PyObject *source;
    Py_buffer text;
    double bias, stop;
    if (!PyArg_ParseTuple(args, "Odd:scan", &source, &bias, &stop) || utf8_of(source, &text) < 0)
        return NULL;
    Windows w = {.bias = bias, .stop = stop};
    Block blk = {.weights = self->weights.buf, .shift = 32 - self->bits, .class_keys = self->class_keys,
                 .class_ids = self->class_ids, .class_bits = self->class_bits};
    const int release = text.len >= RELEASE_GIL_BYTES;
    if (release) {  /* a stamp array of its own: other threads may scan meanwhile */
        blk.stamp = calloc((size_t)1 << self->bits, sizeof(uint32_t));
        if (!blk.stamp) {
            PyBuffer_Release(&text);
            return PyErr_NoMemory();
        }
        blk.generation = 1;
    } else {
        blk.stamp = self->stamp;
        blk.generation = self->generation;
        next_block(&blk);  /* a generation no earlier call used */
    }
    /* The view holds a reference to an immutable str or bytes: safe to read without the GIL. */
    PyThreadState *released = release ? PyEval_SaveThread() : NULL;
    scan(&w, &blk, text.buf, text.len, self->block);
    if (released) {
        PyEval_RestoreThread(released);
        free(blk.stamp);
    } else {
        self->generation = blk.generation;
    }
    PyBuffer_Release(&text);
    return Py_BuildValue("dn", w.best, w.windows);
}

static PyMethodDef scanner_methods[] = {
    {"scan", (PyCFunction)scanner_scan, METH_VARARGS,
     "scan(text: str | bytes, bias, stop) -> (logit, windows): the highest window logit of the text (UTF-8), "
     "or the first at or above stop (then not every window was read)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef scanner_members[] = {
    {"bits", T_INT, offsetof(Scanner, bits), READONLY, "2^bits weights"},
    {"block", T_PYSSIZET, offsetof(Scanner, block), READONLY, "tokens per block"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "extproc.ai_gateway._prompt_scan.Scanner",
    .tp_doc = PyDoc_STR("Scanner(weights, bits, block, classes=None): the prompt-injection model's windowed scan; "
                        "classes maps word token values to word classes 1..255."),
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = scanner_new,
    .tp_dealloc = (destructor)scanner_dealloc,
    .tp_methods = scanner_methods,
    .tp_members = scanner_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "extproc.ai_gateway._prompt_scan",
    .m_doc = "The prompt-injection model's features, windows and early exit in one C pass over the text.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__prompt_scan(void)
{
    init_tables();
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
