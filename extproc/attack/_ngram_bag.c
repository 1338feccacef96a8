/* The attack model (models/attack.onnx) fused into one pass per value.
 *
 * The ONNX graph takes every n-gram's bucket id as an int64 tensor, gathers the embedding rows,
 * sums them over orders, then per value through a cumulative sum over the whole batch, and runs
 * a small MLP. For a request of a few KB that is hundreds of KB of temporaries, written and read
 * back. Here each n-gram is hashed and its embedding row added straight into its value's bag,
 * which stays in registers; then the MLP. Nothing is allocated per call.
 *
 * extproc/attack/native.py checks the graph, reads the weights out of the .onnx file and hands
 * them over; the hash constants come from extproc/attack/features.py. Any disagreement with
 * featurize() + onnxruntime is a bug: tests/unit/test_attack_native.py compares the two engines.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_ORDER 8    /* longer n-grams than features.ORDER_SALTS has salts for */
#define MAX_DIM 64     /* the bag and hidden layer live on the stack; dim is a multiple of 4 */
#define MAX_HIDDEN 256

/* ---- The token-class lexer (extproc/attack/tokens.py has the same rules; tests hold them equal). */

#define MAX_WORD 32
#define MAX_OPERATOR 3
enum { WORD = 0, CALL = 1, NUMBER = 13, HEX_NUMBER = 14, NON_ASCII = 17, TAG_OPEN = 18, FIRST_OPERATOR = 19 };
#define CLASS_BASE 0x80

typedef struct {
    PyObject_HEAD
    Py_ssize_t count, operators;
    unsigned char (*words)[MAX_WORD];   /* sorted as Python sorts bytes */
    unsigned char *lengths, *classes;
    unsigned char operator[32][MAX_OPERATOR + 1], operator_length[32];
    unsigned char single[256];          /* class byte of a punctuation or control byte */
} Lexer;

static void lexer_dealloc(Lexer *self)
{
    PyMem_Free(self->words);
    PyMem_Free(self->lengths);
    PyMem_Free(self->classes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *lexer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"words", "classes", "operators", "single", NULL};
    PyObject *words, *operators;
    Py_buffer classes, single;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oy*Oy*", keywords, &words, &classes, &operators, &single))
        return NULL;
    Lexer *self = NULL;
    PyObject *word_list = PySequence_Fast(words, "words must be a sequence");
    PyObject *operator_list = word_list ? PySequence_Fast(operators, "operators must be a sequence") : NULL;
    if (!operator_list)
        goto done;
    const Py_ssize_t count = PySequence_Fast_GET_SIZE(word_list), ops = PySequence_Fast_GET_SIZE(operator_list);
    if (classes.len != count || single.len != 256 || ops > 32) {
        PyErr_SetString(PyExc_ValueError, "one class per word, 256 single classes, at most 32 operators");
        goto done;
    }
    self = (Lexer *)type->tp_alloc(type, 0);
    if (!self)
        goto done;
    self->count = count;
    self->operators = ops;
    self->words = PyMem_Calloc(count ? count : 1, MAX_WORD);
    self->lengths = PyMem_Calloc(count ? count : 1, 1);
    self->classes = PyMem_Calloc(count ? count : 1, 1);
    if (!self->words || !self->lengths || !self->classes) {
        PyErr_NoMemory();
        Py_CLEAR(self);
        goto done;
    }
    memcpy(self->classes, classes.buf, count);
    memcpy(self->single, single.buf, 256);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *word = PySequence_Fast_GET_ITEM(word_list, i);
        if (!PyBytes_Check(word) || PyBytes_GET_SIZE(word) < 1 || PyBytes_GET_SIZE(word) > MAX_WORD) {
            PyErr_Format(PyExc_ValueError, "words must be bytes of 1..%d characters", MAX_WORD);
            Py_CLEAR(self);
            goto done;
        }
        memcpy(self->words[i], PyBytes_AS_STRING(word), PyBytes_GET_SIZE(word));
        self->lengths[i] = (unsigned char)PyBytes_GET_SIZE(word);
    }
    for (Py_ssize_t i = 0; i < ops; i++) {
        PyObject *op = PySequence_Fast_GET_ITEM(operator_list, i);
        if (!PyBytes_Check(op) || PyBytes_GET_SIZE(op) < 2 || PyBytes_GET_SIZE(op) > MAX_OPERATOR) {
            PyErr_Format(PyExc_ValueError, "operators must be bytes of 2..%d characters", MAX_OPERATOR);
            Py_CLEAR(self);
            goto done;
        }
        memcpy(self->operator[i], PyBytes_AS_STRING(op), PyBytes_GET_SIZE(op));
        self->operator_length[i] = (unsigned char)PyBytes_GET_SIZE(op);
    }
done:
    Py_XDECREF(word_list);
    Py_XDECREF(operator_list);
    PyBuffer_Release(&classes);
    PyBuffer_Release(&single);
    return (PyObject *)self;
}

static inline int is_letter(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
static inline int is_word(unsigned char c) { return is_letter(c) || is_digit(c) || c == '_'; }

/* The word's class in the lexicon (compared lower-cased, as bytes sort), or -1. */
static int word_class(const Lexer *lx, const unsigned char *word, Py_ssize_t length)
{
    if (length > MAX_WORD)
        return -1;
    unsigned char lower[MAX_WORD];
    for (Py_ssize_t i = 0; i < length; i++)
        lower[i] = is_letter(word[i]) ? (word[i] | 0x20) : word[i];
    Py_ssize_t low = 0, high = lx->count;
    while (low < high) {
        const Py_ssize_t mid = (low + high) / 2, other = lx->lengths[mid];
        int order = memcmp(lower, lx->words[mid], length < other ? length : other);
        if (order == 0)
            order = length < other ? -1 : length > other;
        if (order == 0)
            return lx->classes[mid];
        if (order < 0)
            high = mid;
        else
            low = mid + 1;
    }
    return -1;
}

/* out[0..k) = class bytes of the tokens of s[0..n); returns k (<= n: every token takes a byte). */
static Py_ssize_t lex(const Lexer *lx, const unsigned char *s, Py_ssize_t n, unsigned char *out)
{
    Py_ssize_t i = 0, k = 0;
    while (i < n) {
        const unsigned char c = s[i];
        Py_ssize_t j = i + 1;
        if (is_letter(c) || c == '_') {
            while (j < n && is_word(s[j]))
                j++;
            int found = word_class(lx, s + i, j - i);
            if (found < 0) {
                Py_ssize_t after = j;
                while (after < n && s[after] == ' ')
                    after++;
                found = after < n && s[after] == '(' ? CALL : WORD;
            }
            out[k++] = (unsigned char)(CLASS_BASE + found);
        } else if (c == '0' && i + 2 < n && s[i + 1] == 'x' && is_hex(s[i + 2])) {
            for (j = i + 2; j < n && is_hex(s[j]); j++)
                ;
            out[k++] = CLASS_BASE + HEX_NUMBER;
        } else if (is_digit(c)) {
            while (j < n && (is_digit(s[j]) || s[j] == '.'))
                j++;
            out[k++] = CLASS_BASE + NUMBER;
        } else if (c == ' ') {
            while (j < n && s[j] == ' ')
                j++;
        } else {
            Py_ssize_t op = 0;
            for (; op < lx->operators; op++) {
                const Py_ssize_t length = lx->operator_length[op];
                if (length <= n - i && memcmp(s + i, lx->operator[op], length) == 0)
                    break;
            }
            if (op < lx->operators) {
                j = i + lx->operator_length[op];
                out[k++] = (unsigned char)(CLASS_BASE + FIRST_OPERATOR + op);
            } else if (c == '<' && j < n && is_letter(s[j])) {
                out[k++] = CLASS_BASE + TAG_OPEN;
            } else if (c >= 0x80) {
                while (j < n && s[j] >= 0x80)
                    j++;
                out[k++] = CLASS_BASE + NON_ASCII;
            } else {
                out[k++] = lx->single[c];
            }
        }
        i = j;
    }
    return k;
}

/* A framed value followed by the marker and its token classes (features.with_tokens); returns the
 * length written to out, which has room for 2 * n + 1 bytes. */
static Py_ssize_t with_tokens(const Lexer *lx, const unsigned char *value, Py_ssize_t n, unsigned char *out)
{
    memcpy(out, value, n);
    out[n] = 0x04;
    const Py_ssize_t start = n < 3 ? n : 3, end = n - 1 > start ? n - 1 : start;
    return n + 1 + lex(lx, value + start, end - start, out + n + 1);
}

static PyObject *lexer_classes(Lexer *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "classes() takes bytes");
        return NULL;
    }
    const Py_ssize_t n = PyBytes_GET_SIZE(arg);
    PyObject *result = PyBytes_FromStringAndSize(NULL, n);
    if (!result)
        return NULL;
    const Py_ssize_t k = lex(self, (const unsigned char *)PyBytes_AS_STRING(arg), n,
                             (unsigned char *)PyBytes_AS_STRING(result));
    if (_PyBytes_Resize(&result, k) < 0)
        return NULL;
    return result;
}

static PyMethodDef lexer_methods[] = {
    {"classes", (PyCFunction)lexer_classes, METH_O, "classes(text): one class byte per token of text."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LexerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "extproc.attack._ngram_bag.Lexer",
    .tp_doc = PyDoc_STR("Lexer(words, classes, operators, single): the token-class lexer of extproc.attack.tokens."),
    .tp_basicsize = sizeof(Lexer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = lexer_new,
    .tp_dealloc = (destructor)lexer_dealloc,
    .tp_methods = lexer_methods,
};

typedef struct {
    PyObject_HEAD
    /* Held for the kernel's lifetime, so the weights are neither copied nor freed under it. */
    Py_buffer table, w1, b1, w2, b2;
    uint32_t multiplier, mix;
    uint32_t salt[MAX_ORDER + 1];     /* salt[k] for order k */
    unsigned char used[MAX_ORDER + 1]; /* used[k]: order k is in the feature spec */
    int longest, shift;
    Py_ssize_t rows, dim, hidden, heads;
    Lexer *lexer;                      /* NULL: characters only; else values get their token classes */
} Kernel;

/* A C-contiguous float32 buffer of the given rank; shape copied to dims. */
static int get_floats(PyObject *obj, Py_buffer *view, int ndim, Py_ssize_t *dims, const char *name)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (strcmp(view->format, "f") != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be float32, not format '%s'", name, view->format);
        goto fail;
    }
    if (view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, not %d", name, ndim, view->ndim);
        goto fail;
    }
    for (int i = 0; i < ndim; i++)
        dims[i] = view->shape[i];
    return 0;
fail:
    PyBuffer_Release(view);
    view->obj = NULL;
    return -1;
}

static void kernel_dealloc(Kernel *self)
{
    Py_buffer *views[] = {&self->table, &self->w1, &self->b1, &self->w2, &self->b2};
    for (size_t i = 0; i < sizeof views / sizeof *views; i++)
        if (views[i]->obj)
            PyBuffer_Release(views[i]);
    Py_XDECREF(self->lexer);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *kernel_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"orders", "salts", "multiplier", "mix", "bits",
                               "table", "w1", "b1", "w2", "b2", "lexer", NULL};
    PyObject *orders, *salts, *table, *w1, *b1, *w2, *b2, *lexer = Py_None;
    unsigned long multiplier, mix;
    int bits;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOkkiOOOOO|O", keywords, &orders, &salts, &multiplier,
                                     &mix, &bits, &table, &w1, &b1, &w2, &b2, &lexer))
        return NULL;
    if (lexer != Py_None && !PyObject_TypeCheck(lexer, &LexerType)) {
        PyErr_SetString(PyExc_TypeError, "lexer must be a Lexer or None");
        return NULL;
    }
    /* bits <= 30: the largest id, 2**bits, must fit the table's row count without wrapping. */
    if (bits < 1 || bits > 30) {
        PyErr_SetString(PyExc_ValueError, "bits must be in 1..30");
        return NULL;
    }
    Kernel *self = (Kernel *)type->tp_alloc(type, 0);  /* zeroed: views without obj are not held */
    if (!self)
        return NULL;
    if (lexer != Py_None) {
        Py_INCREF(lexer);
        self->lexer = (Lexer *)lexer;
    }
    self->multiplier = (uint32_t)multiplier;
    self->mix = (uint32_t)mix;
    self->shift = 32 - bits;

    PyObject *order_list = PySequence_Fast(orders, "orders must be a sequence");
    PyObject *salt_list = order_list ? PySequence_Fast(salts, "salts must be a sequence") : NULL;
    if (!salt_list)
        goto fail_lists;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(order_list);
    if (count < 1 || count != PySequence_Fast_GET_SIZE(salt_list)) {
        PyErr_SetString(PyExc_ValueError, "orders and salts must be non-empty and of the same length");
        goto fail_lists;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        long order = PyLong_AsLong(PySequence_Fast_GET_ITEM(order_list, i));
        unsigned long salt = PyLong_AsUnsignedLongMask(PySequence_Fast_GET_ITEM(salt_list, i));
        if (PyErr_Occurred())
            goto fail_lists;
        if (order < 1 || order > MAX_ORDER || self->used[order]) {
            PyErr_Format(PyExc_ValueError, "orders must be distinct and in 1..%d", MAX_ORDER);
            goto fail_lists;
        }
        self->used[order] = 1;
        self->salt[order] = (uint32_t)salt;
        if (order > self->longest)
            self->longest = (int)order;
    }
    Py_DECREF(order_list);
    Py_DECREF(salt_list);

    Py_ssize_t table_dims[2], w1_dims[2], b1_dims[1], w2_dims[2], b2_dims[1];
    if (get_floats(table, &self->table, 2, table_dims, "table") < 0
        || get_floats(w1, &self->w1, 2, w1_dims, "w1") < 0
        || get_floats(b1, &self->b1, 1, b1_dims, "b1") < 0
        || get_floats(w2, &self->w2, 2, w2_dims, "w2") < 0
        || get_floats(b2, &self->b2, 1, b2_dims, "b2") < 0)
        goto fail;
    self->rows = table_dims[0];
    self->dim = table_dims[1];
    self->hidden = w1_dims[1];
    self->heads = w2_dims[1];
    /* Every id the hash can produce (0 .. 2**bits) must be a row of the table. */
    if (self->rows < ((Py_ssize_t)1 << bits) + 1 || self->dim < 4 || self->dim > MAX_DIM || self->dim % 4
        || w1_dims[0] != self->dim || self->hidden < 1 || self->hidden > MAX_HIDDEN
        || b1_dims[0] != self->hidden || w2_dims[0] != self->hidden || self->heads < 1
        || b2_dims[0] != self->heads) {
        PyErr_SetString(PyExc_ValueError, "weight shapes do not fit together or the feature spec");
        goto fail;
    }
    return (PyObject *)self;

fail_lists:
    Py_XDECREF(order_list);
    Py_XDECREF(salt_list);
fail:
    Py_DECREF(self);
    return NULL;
}

/* Four floats as one SSE/NEON register (GCC and Clang vector extensions). */
typedef float vec4 __attribute__((vector_size(16)));

static inline vec4 load4(const float *p)
{
    vec4 v;
    memcpy(&v, p, sizeof v);  /* one unaligned load: the table is only as aligned as its buffer */
    return v;
}

/* bag[0..4*groups) = sum of the embedding rows of every n-gram of value[0..n).
 * Inlined with groups constant (4 for the shipped model's 16 dimensions), the sums live in
 * registers. The orders at one position are summed first, then added to the bag, as the graph
 * does: the chain of dependent adds through the bag, which would bound the loop, is one add per
 * position rather than one per n-gram. Row 0 (an n-gram that does not fit in the value) is zero,
 * so such n-grams are skipped rather than added. */
static inline __attribute__((always_inline)) void add_ngrams(const Kernel *k, const unsigned char *value,
                                                             Py_ssize_t n, float *bag, const int groups)
{
    const float *table = k->table.buf;
    const size_t dim = (size_t)groups * 4;
    const uint32_t multiplier = k->multiplier, mix = k->mix;
    const int shift = k->shift, longest = k->longest;
    vec4 sum[MAX_DIM / 4];
    for (int g = 0; g < groups; g++)
        sum[g] = (vec4){0.0f, 0.0f, 0.0f, 0.0f};
    for (Py_ssize_t i = 0; i < n; i++) {
        const int room = n - i < longest ? (int)(n - i) : longest;
        vec4 here[MAX_DIM / 4];
        for (int g = 0; g < groups; g++)
            here[g] = (vec4){0.0f, 0.0f, 0.0f, 0.0f};
        uint32_t hash = 0;  /* the rolling hash of value[i .. i+order) */
        for (int order = 1; order <= room; order++) {
            hash = hash * multiplier + value[i + order - 1];
            if (!k->used[order])
                continue;
            const uint32_t id = (((hash ^ k->salt[order]) * mix) >> shift) + 1;  /* <= 2**bits < rows */
            const float *row = table + id * dim;
            for (int g = 0; g < groups; g++)
                here[g] += load4(row + 4 * g);
        }
        for (int g = 0; g < groups; g++)
            sum[g] += here[g];
    }
    memcpy(bag, sum, dim * sizeof(float));
}

/* probabilities[0..heads) of one value: bag * 1/sqrt(n) -> Gemm, Relu -> Gemm -> Sigmoid.
 * w1 is [dim, hidden] and w2 [hidden, heads] (the graph's Gemms have no transposes). */
static void score_value(const Kernel *k, const unsigned char *value, Py_ssize_t n, float *out)
{
    float bag[MAX_DIM], hidden[MAX_HIDDEN];
    const Py_ssize_t dim = k->dim, width = k->hidden, heads = k->heads;
    /* Specialised for the dimensions training writes (one model; two or three averaged seeds). */
    if (dim == 16)
        add_ngrams(k, value, n, bag, 4);
    else if (dim == 32)
        add_ngrams(k, value, n, bag, 8);
    else if (dim == 48)
        add_ngrams(k, value, n, bag, 12);
    else
        add_ngrams(k, value, n, bag, (int)(dim / 4));
    /* As featurize: length ** -0.5 in double, then float32. */
    const float scale = (float)pow((double)n, -0.5);
    const float *w1 = k->w1.buf, *b1 = k->b1.buf, *w2 = k->w2.buf, *b2 = k->b2.buf;
    for (Py_ssize_t j = 0; j < width; j++)
        hidden[j] = b1[j];
    for (Py_ssize_t d = 0; d < dim; d++) {
        const float x = bag[d] * scale;
        for (Py_ssize_t j = 0; j < width; j++)
            hidden[j] += x * w1[d * width + j];
    }
    for (Py_ssize_t h = 0; h < heads; h++)
        out[h] = b2[h];
    for (Py_ssize_t j = 0; j < width; j++) {
        const float x = hidden[j] > 0.0f ? hidden[j] : 0.0f;
        for (Py_ssize_t h = 0; h < heads; h++)
            out[h] += x * w2[j * heads + h];
    }
    for (Py_ssize_t h = 0; h < heads; h++)
        out[h] = 1.0f / (1.0f + expf(-out[h]));
}

#define RELEASE_GIL_BYTES (256 * 1024)

static PyObject *kernel_run(Kernel *self, PyObject *args)
{
    PyObject *framed, *out_obj;
    if (!PyArg_ParseTuple(args, "OO:run", &framed, &out_obj))
        return NULL;
    /* A tuple of our own keeps every value alive and unchanged while the GIL is released, even
     * if another thread changes the caller's list. */
    PyObject *values = PySequence_Tuple(framed);
    if (!values)
        return NULL;
    const Py_ssize_t count = PyTuple_GET_SIZE(values);
    Py_ssize_t total = 0, longest = 0;
    for (Py_ssize_t v = 0; v < count; v++) {
        PyObject *item = PyTuple_GET_ITEM(values, v);
        if (PyBytes_Check(item)) {
            total += PyBytes_GET_SIZE(item);
            if (PyBytes_GET_SIZE(item) > longest)
                longest = PyBytes_GET_SIZE(item);
        }
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) == 0) {  /* as featurize: 1/sqrt(0) */
            PyErr_Format(PyBytes_Check(item) ? PyExc_ValueError : PyExc_TypeError,
                         "framed[%zd] must be non-empty bytes", v);
            Py_DECREF(values);
            return NULL;
        }
    }
    Py_buffer out;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        Py_DECREF(values);
        return NULL;
    }
    if (strcmp(out.format, "f") != 0 || out.len != count * self->heads * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "out must be float32 with room for [%zd, %zd]", count, self->heads);
        PyBuffer_Release(&out);
        Py_DECREF(values);
        return NULL;
    }
    float *probabilities = out.buf;
    /* Room for the longest value with its token classes: at most one class per byte. */
    unsigned char *extended = self->lexer ? PyMem_RawMalloc(2 * (size_t)longest + 1) : NULL;
    if (self->lexer && !extended) {
        PyBuffer_Release(&out);
        Py_DECREF(values);
        return PyErr_NoMemory();
    }
    /* A request's values take microseconds: giving the GIL away for that gains nothing on the
     * serving thread and risks waiting a switch interval (5 ms) to get it back from a scrape or
     * reload thread. Only long inputs (batches, training) let other threads run meanwhile. */
    PyThreadState *released = total >= RELEASE_GIL_BYTES ? PyEval_SaveThread() : NULL;
    for (Py_ssize_t v = 0; v < count; v++) {
        PyObject *item = PyTuple_GET_ITEM(values, v);  /* bytes are immutable: safe without the GIL */
        const unsigned char *value = (const unsigned char *)PyBytes_AS_STRING(item);
        Py_ssize_t n = PyBytes_GET_SIZE(item);
        if (extended) {
            n = with_tokens(self->lexer, value, n, extended);
            value = extended;
        }
        score_value(self, value, n, probabilities + v * self->heads);
    }
    if (released)
        PyEval_RestoreThread(released);
    PyMem_RawFree(extended);
    PyBuffer_Release(&out);
    Py_DECREF(values);
    Py_RETURN_NONE;
}

static PyMethodDef kernel_methods[] = {
    {"run", (PyCFunction)kernel_run, METH_VARARGS,
     "run(framed, out): out[v, h] = probability of head h for framed value v (float32 [values, heads])."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef kernel_members[] = {
    {"heads", T_PYSSIZET, offsetof(Kernel, heads), READONLY, "number of output heads"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "extproc.attack._ngram_bag.Kernel",
    .tp_doc = PyDoc_STR("Kernel(orders, salts, multiplier, mix, bits, table, w1, b1, w2, b2, lexer=None): the "
                        "attack model's n-gram hashing, embedding bag and MLP in one pass per value."),
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = kernel_new,
    .tp_dealloc = (destructor)kernel_dealloc,
    .tp_methods = kernel_methods,
    .tp_members = kernel_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "extproc.attack._ngram_bag",
    .m_doc = "The attack model's n-gram hashing, embedding bag and MLP fused into one C pass per value.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__ngram_bag(void)
{
    if (PyType_Ready(&KernelType) < 0 || PyType_Ready(&LexerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&LexerType);
    if (PyModule_AddObject(m, "Lexer", (PyObject *)&LexerType) < 0) {
        Py_DECREF(&LexerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
