/* The bot model (models/bot.onnx) evaluated without onnxruntime: its tree ensemble walked in C.
 *
 * The graph is one ai.onnx.ml TreeEnsembleClassifier (LightGBM, binary, LOGISTIC post-transform)
 * followed by Identity/Cast/Mul(1.0) nodes that change nothing in the probabilities. For one
 * [1, features] vector onnxruntime spends most of its time outside the trees: the run's set-up,
 * the output tensors, the label. Here one call walks every tree and returns P(class 1).
 *
 * The arithmetic is onnxruntime's, so the two engines agree to the last bit on the shipped model:
 *   - a branch node compares the float32 feature with its float32 threshold (BRANCH_LEQ: x <= t,
 *     BRANCH_LT: x < t, ...); a NaN feature goes to the true child only on nodes with
 *     missing_value_tracks_true, otherwise every comparison with it is false;
 *   - the leaves' weights are summed in float32, tree after tree in the order of the roots given;
 *   - the binary case with mixed-sign weights and LOGISTIC: P(class 1) = logistic(sum), computed
 *     as onnxruntime's ComputeLogistic, v = 1 / (1 + exp(-|s|)), 1 - v for s < 0, in float32.
 * extproc/bot/native.py checks the graph is that case, lays the nodes out and hands them over.
 * tests/unit/test_bot_native.py compares the two engines.
 *
 * Nodes are laid out depth first, a branch's true child right after it, and 12 bytes each (the
 * shipped model's 3,900 nodes in 47 KB): the walk touches few cache lines, and as every child comes
 * after its parent (the constructor checks it), it ends on a leaf whatever the arrays say.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Node modes, as extproc/bot/native.py numbers them. */
enum { LEAF = 0, BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, MODES };

#define MAX_FEATURES 65535

typedef struct {
    float value;         /* branch: the threshold; leaf: the weight added to the score */
    int32_t next_false;  /* branch: the child when the comparison fails; the true child is the next node */
    uint16_t feature;    /* branch: the index compared */
    uint8_t mode;
    uint8_t missing_true; /* branch: a NaN feature goes to the true child */
} Node;

_Static_assert(sizeof(Node) == 12, "a node is 12 bytes");

typedef struct {
    PyObject_HEAD
    Node *nodes;
    int32_t *roots;
    Py_ssize_t n_nodes, n_trees, n_features;
    int all_leq;  /* every branch is BRANCH_LEQ (LightGBM's export): the walk without the switch */
} Trees;

/* A C-contiguous 1-d buffer of the given struct format and length; released by the caller. */
static int get_array(PyObject *obj, Py_buffer *view, const char *format, Py_ssize_t itemsize, Py_ssize_t length,
                     const char *name)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (strcmp(view->format, format) != 0 || view->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s must have format '%s', not '%s'", name, format, view->format);
        goto fail;
    }
    if (length >= 0 && view->len != length * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s must have %zd items, not %zd", name, length, view->len / itemsize);
        goto fail;
    }
    return 0;
fail:
    PyBuffer_Release(view);
    view->obj = NULL;
    return -1;
}

static void trees_dealloc(Trees *self)
{
    PyMem_Free(self->nodes);
    PyMem_Free(self->roots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *trees_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"features", "values", "modes", "missing_true", "next_false", "roots", "n_features",
                               NULL};
    PyObject *objs[6];
    Py_ssize_t n_features;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOn", keywords, &objs[0], &objs[1], &objs[2], &objs[3],
                                     &objs[4], &objs[5], &n_features))
        return NULL;
    /* features, values, modes, missing_true, next_false (one item per node), roots */
    Py_buffer views[6];
    memset(views, 0, sizeof views);
    static const char *names[] = {"features", "values", "modes", "missing_true", "next_false", "roots"};
    static const char *formats[] = {"i", "f", "B", "B", "i", "i"};
    static const Py_ssize_t sizes[] = {4, 4, 1, 1, 4, 4};
    Trees *self = NULL;
    Py_ssize_t n = -1;
    for (int i = 0; i < 6; i++) {
        if (get_array(objs[i], &views[i], formats[i], sizes[i], i < 5 ? n : -1, names[i]) < 0)
            goto done;
        if (i == 0)
            n = views[0].len / 4;
    }
    const Py_ssize_t n_trees = views[5].len / 4;
    if (n < 1 || n > INT32_MAX || n_trees < 1 || n_features < 1 || n_features > MAX_FEATURES) {
        PyErr_Format(PyExc_ValueError, "need at least one node, one tree and 1..%d features", MAX_FEATURES);
        goto done;
    }
    const int32_t *feature = views[0].buf, *next_false = views[4].buf, *root = views[5].buf;
    const float *value = views[1].buf;
    const uint8_t *mode = views[2].buf, *missing = views[3].buf;
    int all_leq = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (mode[i] >= MODES || missing[i] > 1) {
            PyErr_Format(PyExc_ValueError, "node %zd: mode %d or missing_true %d out of range", i, mode[i], missing[i]);
            goto done;
        }
        if (mode[i] == LEAF)
            continue;
        /* Children strictly after their parent (the true child next): every walk ends on a leaf. */
        if (feature[i] < 0 || feature[i] >= n_features || i + 1 >= n || next_false[i] <= i || next_false[i] >= n) {
            PyErr_Format(PyExc_ValueError, "node %zd: feature or child out of range (children come after "
                         "their parent)", i);
            goto done;
        }
        all_leq &= mode[i] == BRANCH_LEQ;
    }
    for (Py_ssize_t t = 0; t < n_trees; t++)
        if (root[t] < 0 || root[t] >= n) {
            PyErr_Format(PyExc_ValueError, "root of tree %zd out of range", t);
            goto done;
        }

    self = (Trees *)type->tp_alloc(type, 0);
    if (!self)
        goto done;
    self->nodes = PyMem_Calloc((size_t)n, sizeof(Node));
    self->roots = PyMem_Calloc((size_t)n_trees, sizeof(int32_t));
    if (!self->nodes || !self->roots) {
        PyErr_NoMemory();
        Py_CLEAR(self);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        self->nodes[i] = mode[i] == LEAF ? (Node){value[i], 0, 0, LEAF, 0}
                                         : (Node){value[i], next_false[i], (uint16_t)feature[i], mode[i], missing[i]};
    memcpy(self->roots, root, (size_t)n_trees * sizeof(int32_t));
    self->n_nodes = n;
    self->n_trees = n_trees;
    self->n_features = n_features;
    self->all_leq = all_leq;
done:
    for (int i = 0; i < 6; i++)
        if (views[i].obj)
            PyBuffer_Release(&views[i]);
    return (PyObject *)self;
}

static inline int holds(const Node *node, float x)
{
    switch (node->mode) {
    case BRANCH_LEQ: return x <= node->value;
    case BRANCH_LT: return x < node->value;
    case BRANCH_GTE: return x >= node->value;
    case BRANCH_GT: return x > node->value;
    case BRANCH_EQ: return x == node->value;
    default: return x != node->value;  /* BRANCH_NEQ: true for NaN, as in onnxruntime */
    }
}

/* The sum of one leaf per tree, in float32 and tree order. */
static float tree_sum(const Trees *self, const float *x)
{
    const Node *nodes = self->nodes;
    float sum = 0.0f;
    if (self->all_leq) {
        for (Py_ssize_t t = 0; t < self->n_trees; t++) {
            const Node *node = nodes + self->roots[t];
            while (node->mode != LEAF) {
                const float v = x[node->feature];
                node = (v <= node->value || (node->missing_true && isnan(v))) ? node + 1 : nodes + node->next_false;
            }
            sum += node->value;
        }
    } else {
        for (Py_ssize_t t = 0; t < self->n_trees; t++) {
            const Node *node = nodes + self->roots[t];
            while (node->mode != LEAF) {
                const float v = x[node->feature];
                node = (holds(node, v) || (node->missing_true && isnan(v))) ? node + 1 : nodes + node->next_false;
            }
            sum += node->value;
        }
    }
    return sum;
}

/* onnxruntime's ComputeLogistic, in float32. */
static float logistic(float s)
{
    const float v = 1.0f / (1.0f + expf(-fabsf(s)));
    return s < 0.0f ? 1.0f - v : v;
}

static PyObject *trees_probability(Trees *self, PyObject *arg)
{
    Py_buffer x;
    if (get_array(arg, &x, "f", 4, -1, "the vector") < 0)
        return NULL;
    if (x.len != self->n_features * 4) {
        PyErr_Format(PyExc_ValueError, "the vector must have %zd float32 features, not %zd", self->n_features,
                     x.len / 4);
        PyBuffer_Release(&x);
        return NULL;
    }
    const float p = logistic(tree_sum(self, x.buf));
    PyBuffer_Release(&x);
    return PyFloat_FromDouble((double)p);
}

static PyObject *trees_probabilities(Trees *self, PyObject *args)
{
    PyObject *x_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OO:probabilities", &x_obj, &out_obj))
        return NULL;
    Py_buffer x, out;
    if (get_array(x_obj, &x, "f", 4, -1, "x") < 0)
        return NULL;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    const Py_ssize_t rows = x.len / 4 / self->n_features;
    if (x.len % (self->n_features * 4) || strcmp(out.format, "f") != 0 || out.len != rows * 4) {
        PyErr_Format(PyExc_ValueError, "x must be float32 [rows, %zd] and out float32 [rows]", self->n_features);
        PyBuffer_Release(&out);
        PyBuffer_Release(&x);
        return NULL;
    }
    const float *features = x.buf;
    float *p = out.buf;
    Py_BEGIN_ALLOW_THREADS  /* the buffers are held: neither can be freed or resized meanwhile */
    for (Py_ssize_t r = 0; r < rows; r++)
        p[r] = logistic(tree_sum(self, features + r * self->n_features));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    PyBuffer_Release(&x);
    Py_RETURN_NONE;
}

static PyMethodDef trees_methods[] = {
    {"probability", (PyCFunction)trees_probability, METH_O,
     "probability(x): P(class 1) of one float32 vector of n_features (any C-contiguous shape)."},
    {"probabilities", (PyCFunction)trees_probabilities, METH_VARARGS,
     "probabilities(x, out): out[r] = P(class 1) of row r of float32 x [rows, n_features]; out float32 [rows]."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef trees_members[] = {
    {"n_nodes", T_PYSSIZET, offsetof(Trees, n_nodes), READONLY, "number of nodes"},
    {"n_trees", T_PYSSIZET, offsetof(Trees, n_trees), READONLY, "number of trees"},
    {"n_features", T_PYSSIZET, offsetof(Trees, n_features), READONLY, "length of an input vector"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject TreesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "extproc.bot._trees.Trees",
    .tp_doc = PyDoc_STR("Trees(features, values, modes, missing_true, next_false, roots, n_features): a binary "
                        "tree ensemble with a logistic output, nodes as flat arrays (int32, float32, uint8, uint8, "
                        "int32; roots int32) depth first: a branch's true child right after it, its false child "
                        "further on."),
    .tp_basicsize = sizeof(Trees),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = trees_new,
    .tp_dealloc = (destructor)trees_dealloc,
    .tp_methods = trees_methods,
    .tp_members = trees_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "extproc.bot._trees",
    .m_doc = "The bot model's tree ensemble evaluated in C, with onnxruntime's arithmetic.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__trees(void)
{
    if (PyType_Ready(&TreesType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&TreesType);
    if (PyModule_AddObject(m, "Trees", (PyObject *)&TreesType) < 0) {
        Py_DECREF(&TreesType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
