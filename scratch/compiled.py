"""scratch's network, compiled: the same hand-written maths as scratch/ (the shortcut's
closed forms, Keras' optimizer rules as scratch.optimizers has them), written as loops
and NumPy calls in Numba functions, so that nothing runs between steps but compiled code.

A module of its own: scratch's NumPy modules import no Numba, and stay the readable
reference. ``CompiledMLP`` keeps scratch.MLP's verbs (``fit``, ``predict``, ``evaluate``,
``gradients``, ``train_step``, ``get_weights``, ``set_weights``) and its layout: every
parameter a view into one flat array, kernels (n_in, n_out) as Keras has them. One call
of ``fit`` is one compiled call, however many epochs it trains. ``CompiledSeedBatchedMLP``
is scratch.seeds.SeedBatchedMLP compiled the same way. Numba caches what it compiled on
disk (``cache=True``), so a process loads it instead of compiling again.
"""

from __future__ import annotations

import copy
import ctypes
import math

import llvmlite.binding
import numba
import numpy as np
from numba import types
from numba.extending import overload

from scratch import activations as activation_lib
from scratch import losses as loss_lib
from scratch import optimizers as optimizer_lib
from scratch.architectures import Architecture
from scratch.model import MLP, History, TrainingDiverged, _check_positive_int, epoch_order

# Activations and losses by number, as the compiled functions take them.
LINEAR, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX = range(6)
ACTIVATIONS = {"linear": LINEAR, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU,
               "leaky_relu": LEAKY_RELU, "softmax": SOFTMAX}
MSE, FUSED_CCE, FUSED_BCE = range(3)  # a cross-entropy fuses with its output's logits
SGD, ADAM = range(2)
SMALL = 4096  # multiply-adds below which a product is plain loops, not a BLAS call

# error_model="numpy": a float division by zero gives inf or NaN, as NumPy's, instead of a
# check that raises, which keeps a loop of divisions from being vectorised.
jit = numba.njit(cache=True, error_model="numpy")
# A function that only compiled code calls: without the wrappers that let Python call it,
# which take a fifth of the compilation.
inner = numba.njit(cache=True, error_model="numpy", no_cpython_wrapper=True,
                   no_cfunc_wrapper=True)

# tanh without libm (whose calls no loop can vectorise): cephes' rational form below 0.625,
# and above it 1 - 2 / (e^2a + 1), e^2a from its Taylor series on a range reduced by ln 2.
INV_LN2, LN2_HI, LN2_LO = 1.4426950408889634, 6.93147180369123816490e-01, 1.90821492927058770002e-10
TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
EXP_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(14))  # 1/n!
POW2 = tuple(2.0 ** (2 ** bit) for bit in range(6))  # 2^1, 2^2, 2^4, ... 2^32


@numba.njit(cache=True, error_model="numpy", inline="always")
def _tanh(v):
    """tanh(v) in float64 arithmetic, within 2 ulp of libm's (tests/test_compiled.py), with
    no call and no branch: both forms are computed and one is chosen, so that a loop of
    them runs in SIMD lanes."""
    a = abs(float(v))
    s = a * a
    t = 2.0 * (a if a < 22.0 else 22.0)  # tanh(22) is 1 to float64's; NaN takes 22 here
    k = np.int32(t * INV_LN2 + 0.5)
    r = (t - k * LN2_HI) - k * LN2_LO  # |r| <= ln(2) / 2: 14 terms reach 1e-17
    e = EXP_TAYLOR[13]
    for n in range(12, -1, -1):
        e = e * r + EXP_TAYLOR[n]
    for bit in range(6):  # e^t = 2^k e^r, 2^k from k's bits (k < 64)
        e *= POW2[bit] if k & (1 << bit) else 1.0
    small = a + a * s * ((TANH_P[0] * s + TANH_P[1]) * s + TANH_P[2]) / (
        ((s + TANH_Q[0]) * s + TANH_Q[1]) * s + TANH_Q[2])
    out = small if a < 0.625 else 1.0 - 2.0 / (e + 1.0)
    return math.copysign(out, v) if v == v else v  # -0.0 keeps its sign, NaN stays NaN


# The same in float32 arithmetic, for float32 arrays: twice the SIMD lanes, tanh(10) is 1,
# 10 terms of e^r do, and ln 2 splits as expf's (its high part exact times any k < 2^15).
TANH32 = {name: np.array(values, np.float32) for name, values in (
    ("P", TANH_P), ("Q", TANH_Q), ("EXP", EXP_TAYLOR[:10]), ("POW2", POW2[:5]),
    ("LN2", (0.693359375, -2.12194440e-4, INV_LN2, 0.5, 1.0, 2.0, 10.0, 0.625)))}
P32, Q32, EXP32, POW2_32, C32 = (TANH32[k] for k in ("P", "Q", "EXP", "POW2", "LN2"))


@numba.njit(cache=True, error_model="numpy", inline="always")
def _tanh32(v):
    """_tanh in float32 arithmetic: within 2 ulp of NumPy's float32 tanh."""
    a = abs(v)
    s = a * a
    t = C32[5] * (a if a < C32[6] else C32[6])
    k = np.int32(t * C32[2] + C32[3])
    kf = np.float32(k)
    r = (t - kf * C32[0]) - kf * C32[1]
    e = EXP32[9]
    for n in range(8, -1, -1):
        e = e * r + EXP32[n]
    for bit in range(5):  # k <= 29
        e *= POW2_32[bit] if k & (1 << bit) else C32[4]
    small = a + a * s * ((P32[0] * s + P32[1]) * s + P32[2]) / (
        ((s + Q32[0]) * s + Q32[1]) * s + Q32[2])
    out = small if a < C32[7] else C32[4] - C32[5] / (e + C32[4])
    return np.float32(math.copysign(out, v)) if v == v else v


def _tanh_in(z, v):
    """tanh(v) in z's dtype: float32 arithmetic for a float32 array, float64 otherwise.
    Compiled code only: the dtype picks the body as Numba types the call, so that a caller
    compiles one of the two, not both (which took twice the time to compile)."""
    raise TypeError("_tanh_in runs in compiled code only")


@overload(_tanh_in, inline="always", jit_options={"error_model": "numpy"})
def _tanh_in_typed(z, v):
    if z.dtype == types.float32:
        return lambda z, v: _tanh32(np.float32(v))
    return lambda z, v: z.dtype.type(_tanh(v))


def _numpys_gemm() -> bool:
    """Make NumPy's own OpenBLAS's cblas_sgemm and cblas_dgemm callable from the compiled
    code, if NumPy has one (its PyPI wheels bundle scipy-openblas64). Numba's np.dot calls
    SciPy's OpenBLAS instead: a second library with a thread pool of its own, which would
    fight NumPy's over the cores, and another BLAS than scratch's."""
    from threadpoolctl import threadpool_info

    # NumPy's is loaded (its wheel's, in numpy.libs, first); SciPy's has no ILP64 names
    for pool in sorted(threadpool_info(), key=lambda pool: "numpy" not in pool["filepath"]):
        try:
            lib = ctypes.CDLL(pool["filepath"])
            for name in GEMM:
                llvmlite.binding.add_symbol(name, ctypes.cast(getattr(lib, name),
                                                              ctypes.c_void_p).value)
            return True
        except (OSError, AttributeError):
            continue
    return False


# cblas_?gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), with
# 64-bit sizes (ILP64), row-major.
GEMM = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_")
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_SGEMM, _DGEMM = (types.ExternalFunction(name, types.void(
    types.int32, types.int32, types.int32, types.int64, types.int64, types.int64, t,
    types.voidptr, types.int64, types.voidptr, types.int64, t, types.voidptr, types.int64))
    for name, t in zip(GEMM, (types.float32, types.float64), strict=True))
# Numba's disk cache keeps what this was when it compiled: a checkout shared by two
# environments whose NumPy bundles a BLAS in one and not the other needs NUMBA_CACHE_DIR.
NUMPY_GEMM = _numpys_gemm()


@inner
def _gemm(a, b, out) -> bool:
    """out = a @ b by NumPy's BLAS, for row-major arrays or transposed views of them (one
    of each stride equal to the itemsize); False, untouched, for any other layout."""
    n, k = a.shape
    m = b.shape[1]
    size = a.itemsize
    if b.itemsize != size or out.itemsize != size:  # one float dtype, as its callers check
        return False
    if out.strides[1] != size or min(a.strides) != size or min(b.strides) != size:
        return False
    ta, tb = a.strides[1] != size, b.strides[1] != size
    # a one-row operand's row stride is never read: at least the row's length, as BLAS asks
    lda = max(max(a.strides) // size, n if ta else k)
    ldb = max(max(b.strides) // size, k if tb else m)
    ldc = max(out.strides[0] // size, m)
    ops = (TRANS if ta else NO_TRANS, TRANS if tb else NO_TRANS)
    if size == 4:
        _SGEMM(ROW_MAJOR, ops[0], ops[1], n, m, k, np.float32(1), a.ctypes.data, lda,
               b.ctypes.data, ldb, np.float32(0), out.ctypes.data, ldc)
    else:
        _DGEMM(ROW_MAJOR, ops[0], ops[1], n, m, k, 1.0, a.ctypes.data, lda,
               b.ctypes.data, ldb, 0.0, out.ctypes.data, ldc)
    return True


@inner
def _matmul(a, b, out):
    """out = a @ b: loops for the tiny products (a BLAS call costs more than they do),
    NumPy's BLAS for the others (Numba's np.dot where NumPy has none of its own)."""
    n, k = a.shape
    m = b.shape[1]
    if n * k * m > SMALL:
        if not NUMPY_GEMM:  # a constant: the branch not taken is not compiled
            np.dot(a, b, out)
            return
        if _gemm(a, b, out):
            return
    for i in range(n):
        for j in range(m):
            total = out.dtype.type(0)  # in the arrays' dtype, as BLAS would
            for p in range(k):
                total += a[i, p] * b[p, j]
            out[i, j] = total


@inner
def _activate(kind, slope, z, a):
    """a = f(z), elementwise, or the row-wise softmax."""
    n, k = z.shape
    # sigmoid(z) = tanh(z / 2) / 2 + 1 / 2: scratch's (tanh(z / 2) + 1) / 2 (it never
    # overflows) rearranged, the same number to the bit, since halving is exact. tanh's
    # scale and shift are 1 and -0.0 (t + -0.0 is t, -0.0 too). One tanh in the loop:
    # each copy of its inlined body costs seconds of compilation.
    half = z.dtype.type(0.5)
    scale, shift = (half, half) if kind == SIGMOID else (z.dtype.type(1), z.dtype.type(-0.0))
    for i in range(n):
        if kind == SOFTMAX:
            top = z[i].max()
            total = z.dtype.type(0)
            for j in range(k):
                a[i, j] = np.exp(z[i, j] - top)
                total += a[i, j]
            for j in range(k):
                a[i, j] /= total
            continue
        for j in range(k):
            v = z[i, j]
            if kind == SIGMOID or kind == TANH:
                a[i, j] = _tanh_in(z, v * scale) * scale + shift
            elif kind == RELU:
                a[i, j] = max(v, z.dtype.type(0))
            elif kind == LEAKY_RELU:
                a[i, j] = v if v > 0 else v * z.dtype.type(slope)
            else:
                a[i, j] = v


@inner
def _vjp(kind, slope, z, a, grad):
    """grad becomes dL/dZ from dL/dA, in place: the activation's closed-form derivative.
    ``a`` is f(z) unmasked (dropout's mask is applied to grad before)."""
    n, k = z.shape
    one = z.dtype.type(1)
    for i in range(n):
        if kind == SOFTMAX:  # a (grad - sum(grad a))
            dot = z.dtype.type(0)
            for j in range(k):
                dot += grad[i, j] * a[i, j]
            for j in range(k):
                grad[i, j] = a[i, j] * (grad[i, j] - dot)
            continue
        for j in range(k):
            if kind == SIGMOID:
                grad[i, j] = (one - a[i, j]) * a[i, j] * grad[i, j]
            elif kind == TANH:  # 1 - tanh(z)^2, tanh(z) being a to the bit
                grad[i, j] *= one - a[i, j] * a[i, j]
            elif kind == RELU:
                grad[i, j] = grad[i, j] if z[i, j] > 0 else z.dtype.type(0)
            elif kind == LEAKY_RELU:
                grad[i, j] = grad[i, j] if z[i, j] > 0 else grad[i, j] * z.dtype.type(slope)


@inner
def _layers(flat, sizes):
    """Every layer's kernel and bias, as views into ``flat`` (scratch.MLP's layout)."""
    kernels = [flat[:sizes[0] * sizes[1]].reshape((sizes[0], sizes[1]))]
    biases = [flat[sizes[0] * sizes[1]:sizes[0] * sizes[1] + sizes[1]]]
    offset = sizes[0] * sizes[1] + sizes[1]
    for layer in range(1, len(sizes) - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        kernels.append(flat[offset:offset + n_in * n_out].reshape((n_in, n_out)))
        biases.append(flat[offset + n_in * n_out:offset + n_in * n_out + n_out])
        offset += n_in * n_out + n_out
    return kernels, biases


@inner
def _buffers(sizes, n, like):
    """For ``n`` samples: the activations (the input's first, then every layer's), every
    layer's z, dropout mask and dL/dZ, and the targets."""
    layers = range(len(sizes) - 1)
    acts = [np.empty((n, sizes[layer]), like.dtype) for layer in range(len(sizes))]
    zs = [np.empty((n, sizes[layer + 1]), like.dtype) for layer in layers]
    masks = [np.ones((n, sizes[layer + 1]), like.dtype) for layer in layers]
    deltas = [np.empty((n, sizes[layer + 1]), like.dtype) for layer in layers]
    return acts, zs, masks, deltas, np.empty((n, sizes[-1]), like.dtype)


@inner
def _forward(kernels, biases, kinds, slopes, acts, zs, masks, rate):
    """From the input in acts[0], every layer's z and a into zs[l] and acts[l + 1].
    Inverted dropout after every hidden layer where ``rate`` > 0 (training; inference
    passes 0)."""
    layers = len(kernels)
    for layer in range(layers):
        z, a = zs[layer], acts[layer + 1]
        n, n_out = z.shape
        _matmul(acts[layer], kernels[layer], z)
        bias = biases[layer]
        for i in range(n):
            for j in range(n_out):
                z[i, j] += bias[j]
        _activate(kinds[layer], slopes[layer], z, a)
        if rate > 0 and layer < layers - 1:
            mask = masks[layer]
            keep = a.dtype.type(1) / a.dtype.type(1 - rate)
            for i in range(n):
                for j in range(n_out):
                    mask[i, j] = keep if np.random.random() >= rate else a.dtype.type(0)
                    a[i, j] *= mask[i, j]


@inner
def _loss(loss, y, z, s):
    """The batch loss as scratch (and Keras) reports it: a cross-entropy from the logits."""
    n, k = s.shape
    total = 0.0
    for i in range(n):
        if loss == FUSED_CCE:  # -sum(y log_softmax(z))
            top = z[i].max()
            sum_exp = 0.0
            for j in range(k):
                sum_exp += math.exp(z[i, j] - top)
            log_sum = math.log(sum_exp)
            for j in range(k):
                total -= y[i, j] * (z[i, j] - top - log_sum)
        else:
            for j in range(k):
                if loss == MSE:
                    d = s[i, j] - y[i, j]
                    total += d * d
                else:  # max(z, 0) - z y + log(1 + exp(-|z|))
                    v = z[i, j]
                    total += max(v, 0.0) - v * y[i, j] + math.log1p(math.exp(-abs(v)))
    return total / n if loss == FUSED_CCE else total / (n * k)


@inner
def _backward(kernels, d_kernels, d_biases, kinds, slopes, loss, y, acts, zs, masks, deltas,
              rate, scale):
    """The shortcut's backward pass into the gradients' views (scaled by ``scale``: SGD's
    learning rate folds in there, as in scratch.MLP); returns the loss."""
    layers = len(kernels)
    z, s = zs[layers - 1], acts[layers]
    n, k = s.shape
    value = _loss(loss, y, z, s)
    dz = deltas[layers - 1]
    factor = s.dtype.type(scale / n if loss == FUSED_CCE else
                          (2 * scale if loss == MSE else scale) / (n * k))
    for i in range(n):
        for j in range(k):
            dz[i, j] = (s[i, j] - y[i, j]) * factor
    if loss == MSE:
        _vjp(kinds[layers - 1], slopes[layers - 1], z, s, dz)
    for layer in range(layers - 1, -1, -1):
        dz, d_bias = deltas[layer], d_biases[layer]
        _matmul(acts[layer].T, dz, d_kernels[layer])
        for j in range(dz.shape[1]):
            total = dz.dtype.type(0)
            for i in range(n):
                total += dz[i, j]
            d_bias[j] = total
        if layer == 0:
            break
        below = deltas[layer - 1]
        _matmul(dz, kernels[layer].T, below)  # dL/dA of the layer below
        if rate > 0:  # through the mask, then f' at the unmasked activation, which
            below *= masks[layer - 1]  # replaces this layer's (masked) input, used above
            _activate(kinds[layer - 1], slopes[layer - 1], zs[layer - 1], acts[layer])
        _vjp(kinds[layer - 1], slopes[layer - 1], zs[layer - 1], acts[layer], below)
    return value


@inner
def _update(flat, grads, opt, velocity, moments, step):
    """One optimizer step on every parameter, Keras' rules as scratch.optimizers has them.
    ``opt``: kind, learning rate, momentum, nesterov, beta_1, beta_2, epsilon, and the
    learning rate, momentum and betas rounded as Keras rounds them. ``step`` counts steps."""
    t = step[0] + 1
    step[0] = t
    if opt[0] == SGD and opt[2] == 0:  # the gradients come scaled by the learning rate
        for i in range(flat.size):
            flat[i] -= grads[i]
    elif opt[0] == SGD:
        mu = flat.dtype.type(opt[8])
        for i in range(flat.size):
            velocity[i] = velocity[i] * mu - grads[i]
            flat[i] += mu * velocity[i] - grads[i] if opt[3] else velocity[i]
    else:
        alpha = flat.dtype.type(opt[7] * math.sqrt(1 - math.pow(opt[10], t))
                                / (1 - math.pow(opt[9], t)))  # libm's pow, as Python's **
        b1, b2 = flat.dtype.type(1 - opt[4]), flat.dtype.type(1 - opt[5])
        eps = flat.dtype.type(opt[6])
        m, v = moments[0], moments[1]
        for i in range(flat.size):
            g = grads[i]
            m[i] += (g - m[i]) * b1
            v[i] += (g * g - v[i]) * b2
            flat[i] -= alpha * m[i] / (np.sqrt(v[i]) + eps)


@jit
def _train(flat, grads, sizes, kinds, slopes, loss, opt, velocity, moments, step, x, y, orders,
           batch, rate, seed):
    """Train on ``orders`` (an epoch's sample order a row) in batches of ``batch``: the
    epochs' mean losses, and how many epochs finished. A loss that is not finite stops
    training before its step; the losses then end with it."""
    if rate > 0:
        np.random.seed(seed)
    kernels, biases = _layers(flat, sizes)
    d_kernels, d_biases = _layers(grads, sizes)
    epochs, n = orders.shape
    full, rest = _buffers(sizes, batch, x), _buffers(sizes, max(n % batch, 1), x)
    losses = np.full(epochs, np.nan)
    scale = opt[7] if opt[0] == SGD else 1.0
    for epoch in range(epochs):
        total = 0.0
        for start in range(0, n, batch):
            acts, zs, masks, deltas, yb = full if n - start >= batch else rest
            size = yb.shape[0]
            xb = acts[0]
            for i in range(size):  # the batch's rows, gathered element by element
                row = orders[epoch, start + i]
                for j in range(x.shape[1]):
                    xb[i, j] = x[row, j]
                for j in range(y.shape[1]):
                    yb[i, j] = y[row, j]
            _forward(kernels, biases, kinds, slopes, acts, zs, masks, rate)
            value = _backward(kernels, d_kernels, d_biases, kinds, slopes, loss, yb, acts, zs,
                              masks, deltas, rate, scale)
            if not np.isfinite(value):
                losses[epoch] = value
                return losses, epoch
            _update(flat, grads, opt, velocity, moments, step)
            total += value * size
        losses[epoch] = total / n
    return losses, epochs


@inner
def _copy_rows(src, start, dst, at, rows):
    """dst[at:at + rows] = src[start:start + rows] (2-D), element by element: Numba
    compiles a slice assignment's machinery again in every function that has one, seconds
    each."""
    for i in range(rows):
        for j in range(src.shape[1]):
            dst[at + i, j] = src[start + i, j]


@jit
def _inference(flat, sizes, kinds, slopes, loss, x, y, batch, out):
    """Outputs into ``out`` batch by batch (inference: no dropout); and where ``loss`` >= 0,
    the mean loss over (x, y), computed batch by batch as Keras does."""
    kernels, biases = _layers(flat, sizes)
    n = x.shape[0]
    full, rest = _buffers(sizes, batch, x), _buffers(sizes, max(n % batch, 1), x)
    total = 0.0
    for start in range(0, n, batch):
        acts, zs, masks, _, yb = full if n - start >= batch else rest
        size = yb.shape[0]
        _copy_rows(x, start, acts[0], 0, size)
        _forward(kernels, biases, kinds, slopes, acts, zs, masks, 0.0)
        _copy_rows(acts[-1], 0, out, start, size)
        if loss >= 0:
            _copy_rows(y, start, yb, 0, size)
            total += _loss(loss, yb, zs[-1], acts[-1]) * size
    return total / n



# Many seeds at once (CompiledSeedBatchedMLP): every array gains a last axis of seeds, the
# innermost loop runs over it, and each seed's arithmetic is the single network's in plain
# loops (no BLAS call, at any size): each seed's numbers are its network's to rounding.


@inner
def _seed_layers(flat, sizes, seeds):
    """Every layer's kernel (n_in, n_out, S) and bias (n_out, S), as views into ``flat``:
    scratch.MLP's layout, each parameter's seeds side by side."""
    size = sizes[0] * sizes[1] * seeds
    kernels = [flat[:size].reshape((sizes[0], sizes[1], seeds))]
    biases = [flat[size:size + sizes[1] * seeds].reshape((sizes[1], seeds))]
    offset = size + sizes[1] * seeds
    for layer in range(1, len(sizes) - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        kernels.append(flat[offset:offset + n_in * n_out * seeds].reshape((n_in, n_out, seeds)))
        offset += n_in * n_out * seeds
        biases.append(flat[offset:offset + n_out * seeds].reshape((n_out, seeds)))
        offset += n_out * seeds
    return kernels, biases


@inner
def _seed_buffers(sizes, n, seeds, like, train):
    """For ``n`` samples of every seed: the activations (the input's first), every layer's
    z and dL/dZ, and the targets (shared by the seeds); dL/dZ and the targets empty where
    not ``train``."""
    acts = [np.empty((n, sizes[layer], seeds), like.dtype) for layer in range(len(sizes))]
    zs = [np.empty((n, sizes[layer + 1], seeds), like.dtype) for layer in range(len(sizes) - 1)]
    deltas = [np.empty((n if train else 0, sizes[layer + 1], seeds), like.dtype)
              for layer in range(len(sizes) - 1)]
    return acts, zs, deltas, np.empty((n if train else 0, sizes[-1]), like.dtype)


@inner
def _seed_activate(kind, slope, z, a):
    n, k, seeds = z.shape
    if kind != SOFTMAX:  # element by element: the single network's function
        _activate(kind, slope, z.reshape((n * k, seeds)), a.reshape((n * k, seeds)))
        return
    for i in range(n):
        for t in range(seeds):
            top = z[i, 0, t]
            for j in range(1, k):
                top = max(top, z[i, j, t])
            total = z.dtype.type(0)
            for j in range(k):
                a[i, j, t] = np.exp(z[i, j, t] - top)
                total += a[i, j, t]
            for j in range(k):
                a[i, j, t] /= total


@inner
def _seed_vjp(kind, slope, z, a, grad):
    n, k, seeds = z.shape
    if kind != SOFTMAX:
        _vjp(kind, slope, z.reshape((n * k, seeds)), a.reshape((n * k, seeds)),
             grad.reshape((n * k, seeds)))
        return
    for i in range(n):
        for t in range(seeds):
            dot = z.dtype.type(0)
            for j in range(k):
                dot += grad[i, j, t] * a[i, j, t]
            for j in range(k):
                grad[i, j, t] = a[i, j, t] * (grad[i, j, t] - dot)


@inner
def _seed_loss(loss, y, z, s, out):
    """Each seed's batch loss into ``out``, as ``_loss`` computes one network's."""
    n, k, seeds = s.shape
    out[:] = 0.0
    for i in range(n):
        if loss == FUSED_CCE:
            for t in range(seeds):
                top = z[i, 0, t]
                for j in range(1, k):
                    top = max(top, z[i, j, t])
                sum_exp = 0.0
                for j in range(k):
                    sum_exp += math.exp(z[i, j, t] - top)
                log_sum = math.log(sum_exp)
                for j in range(k):
                    out[t] -= y[i, j] * (z[i, j, t] - top - log_sum)
            continue
        for j in range(k):
            for t in range(seeds):
                if loss == MSE:
                    d = s[i, j, t] - y[i, j]
                    out[t] += d * d
                else:
                    v = z[i, j, t]
                    out[t] += max(v, 0.0) - v * y[i, j] + math.log1p(math.exp(-abs(v)))
    out /= n if loss == FUSED_CCE else n * k


@inner
def _seed_product(a, b, out, ta, tb):
    """out = a @ b for every seed (the last axis), with a or b transposed where ta or tb;
    each sum in the order of its inner index, from zero, as _matmul's."""
    rows, cols, seeds = out.shape
    inner = a.shape[0] if ta else a.shape[1]
    for i in range(rows):
        for j in range(cols):
            out[i, j] = 0
            for p in range(inner):
                for t in range(seeds):
                    out[i, j, t] += ((a[p, i, t] if ta else a[i, p, t])
                                     * (b[j, p, t] if tb else b[p, j, t]))


@inner
def _seed_forward(kernels, biases, kinds, slopes, acts, zs):
    for layer in range(len(kernels)):
        z, b = zs[layer], biases[layer]
        _seed_product(acts[layer], kernels[layer], z, False, False)
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                for t in range(z.shape[2]):
                    z[i, j, t] += b[j, t]
        _seed_activate(kinds[layer], slopes[layer], z, acts[layer + 1])


@inner
def _seed_backward(kernels, d_kernels, d_biases, kinds, slopes, loss, y, acts, zs, deltas,
                   scale, values):
    """``_backward`` for every seed; each seed's loss into ``values``."""
    layers = len(kernels)
    z, s = zs[layers - 1], acts[layers]
    n, k, seeds = s.shape
    _seed_loss(loss, y, z, s, values)
    dz = deltas[layers - 1]
    factor = s.dtype.type(scale / n if loss == FUSED_CCE else
                          (2 * scale if loss == MSE else scale) / (n * k))
    for i in range(n):
        for j in range(k):
            for t in range(seeds):
                dz[i, j, t] = (s[i, j, t] - y[i, j]) * factor
    if loss == MSE:
        _seed_vjp(kinds[layers - 1], slopes[layers - 1], z, s, dz)
    for layer in range(layers - 1, -1, -1):
        dz, d_bias = deltas[layer], d_biases[layer]
        _seed_product(acts[layer], dz, d_kernels[layer], True, False)  # x^T dz
        d_bias[:] = 0
        for i in range(n):
            for j in range(dz.shape[1]):
                for t in range(seeds):
                    d_bias[j, t] += dz[i, j, t]
        if layer == 0:
            break
        below = deltas[layer - 1]
        _seed_product(dz, kernels[layer], below, False, True)  # dz W^T: dL/dA below
        _seed_vjp(kinds[layer - 1], slopes[layer - 1], zs[layer - 1], acts[layer], below)


@inner
def _seed_rows(x, start, xb):
    """Rows start... of x into xb, (n, k, S), for every seed."""
    for i in range(xb.shape[0]):
        for j in range(xb.shape[1]):
            xb[i, j] = x[start + i, j]


@jit
def _train_seeds(flat, grads, sizes, kinds, slopes, loss, opt, velocity, moments, step, x, y,
                 epochs, batch, seeds):
    """Train every seed ``epochs`` epochs on (x, y) in file order, in batches of ``batch``:
    each seed's mean loss an epoch, (epochs, S). A seed whose loss is not finite carries
    NaN on; the others are untouched."""
    kernels, biases = _seed_layers(flat, sizes, seeds)
    d_kernels, d_biases = _seed_layers(grads, sizes, seeds)
    n = x.shape[0]
    full = _seed_buffers(sizes, batch, seeds, x, True)
    rest = _seed_buffers(sizes, max(n % batch, 1), seeds, x, True)
    values, losses = np.empty(seeds), np.empty((epochs, seeds))
    scale = opt[7] if opt[0] == SGD else 1.0
    for epoch in range(epochs):
        losses[epoch] = 0.0
        for start in range(0, n, batch):
            acts, zs, deltas, yb = full if n - start >= batch else rest
            size = yb.shape[0]
            if n > batch or epoch == 0:  # one full batch stays in place from the first
                _seed_rows(x, start, acts[0])
                _copy_rows(y, start, yb, 0, size)
            _seed_forward(kernels, biases, kinds, slopes, acts, zs)
            _seed_backward(kernels, d_kernels, d_biases, kinds, slopes, loss, yb, acts, zs,
                           deltas, scale, values)
            _update(flat, grads, opt, velocity, moments, step)
            for t in range(seeds):
                losses[epoch, t] += values[t] * size
        for t in range(seeds):
            losses[epoch, t] /= n
    return losses


@jit
def _seed_inference(flat, sizes, kinds, slopes, loss, x, y, seeds, values):
    """Every seed's outputs for x, (n, K, S); and where ``loss`` >= 0, each seed's mean
    loss over (x, y) into ``values``, as ``_seed_backward`` computes a batch's."""
    kernels, biases = _seed_layers(flat, sizes, seeds)
    acts, zs, _, _ = _seed_buffers(sizes, x.shape[0], seeds, x, False)
    _seed_rows(x, 0, acts[0])
    _seed_forward(kernels, biases, kinds, slopes, acts, zs)
    if loss >= 0:
        _seed_loss(loss, y, zs[-1], acts[-1], values)
    return acts[-1]


class CompiledMLP:
    """scratch.MLP's network and verbs, trained by compiled code (the shortcut's maths).

    It takes what MLP takes; an activation, loss or optimizer that scratch has and this
    does not (a cross-entropy on another output than its own) is refused by name.
    """

    def __init__(self, sizes, activations, loss, optimizer="sgd", *, dropout: float = 0.0,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 dtype: str = "float32", seed: int = 0):
        # scratch's network, for its checks, its seeded initial weights and its config
        reference = MLP(sizes, activations, loss, optimizer, dropout=dropout, dtype=dtype,
                        kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                        seed=seed)
        self.reference = reference
        self.sizes, self.dtype, self.seed = reference.sizes, reference.dtype, seed
        self.layer_sizes = np.array(self.sizes, np.int64)
        self.loss, self.optimizer, self.dropout = reference.loss, reference.optimizer, dropout
        acts = [layer.activation for layer in reference.dense]
        self.kinds = np.array([ACTIVATIONS[a.name] for a in acts], np.int64)
        self.slopes = np.array([getattr(a, "negative_slope", 0.0) for a in acts], np.float64)
        self.loss_kind = _loss_kind(self.loss, acts[-1])
        self.flat = reference.flat_params.copy()
        self.params = _views(self.flat, self.sizes)
        self.grads = np.zeros_like(self.flat)
        self.opt = _optimizer_vector(self.optimizer)
        self.velocity = np.zeros_like(self.flat)
        self.moments = np.zeros((2, self.flat.size), self.dtype)
        self.step = np.zeros(1, np.int64)
        self.stop_training = False

    @classmethod
    def from_architecture(cls, arch: Architecture, optimizer="sgd", **kwargs) -> CompiledMLP:
        return cls(arch.sizes, arch.activations, arch.loss, optimizer,
                   dropout=kwargs.pop("dropout", arch.dropout), **kwargs)

    def _args(self):
        return self.flat, self.layer_sizes, self.kinds, self.slopes

    def run(self, x: np.ndarray, y: np.ndarray, orders: np.ndarray, batch: int
            ) -> tuple[np.ndarray, int]:
        """Train on ``orders`` (an epoch's sample order a row, C-contiguous int64, each a
        permutation of x's rows) in batches of ``batch``, in one compiled call, with no
        checks (``fit`` checks): the epochs' mean losses, and how many finished. Where a
        loss is not finite, training stops there and the losses end with it."""
        seed = self._mask_seed(self.seed) if self.dropout else 0
        return _train(self.flat, self.grads, self.layer_sizes, self.kinds, self.slopes,
                      self.loss_kind, self.opt, self.velocity, self.moments, self.step,
                      *_as_compiled(x, y), orders, batch, self.dropout, seed)

    def fit(self, x, y, epochs: int = 1, batch_size: int | None = 32, shuffle: bool = True,
            seed: int | None = None, orders: np.ndarray | None = None) -> History:
        """Train ``epochs`` epochs in one compiled call, in the order ``epoch_order`` gives
        (or ``orders``, an epoch's sample order a row); returns the History of epoch losses.
        Raises TrainingDiverged as MLP.fit does."""
        x, y, batch, seed = self.reference._fit_arguments(x, y, epochs, batch_size, seed)
        n = len(x)
        if orders is None:
            orders = np.stack([epoch_order(n, e, seed, shuffle) for e in range(epochs)]) \
                if epochs else np.zeros((0, n), np.int64)
        orders = np.ascontiguousarray(orders, np.int64)
        if orders.ndim != 2 or orders.shape[1] != n or not (np.sort(orders) == np.arange(n)).all():
            raise ValueError(f"orders must hold a permutation of the {n} samples a row; got "
                             f"shape {orders.shape}.")
        losses, finished = self.run(x, y, orders, min(batch, n))
        history = History({"loss": [float(v) for v in losses[:finished]]})
        if finished < len(orders):
            raise TrainingDiverged(f"The loss became {losses[finished]} at epoch {finished}: "
                                   "training diverged. Lower the learning rate, or train in "
                                   "float64.", history)
        if not np.isfinite(self.flat).all():
            raise TrainingDiverged("The last step left weights that are not finite: training "
                                   "diverged. Lower the learning rate, or train in float64.",
                                   history)
        return history

    def _mask_seed(self, seed: int) -> int:
        """The dropout masks' seed for a compiled call: the run's seed and the steps done."""
        return int(np.random.SeedSequence([seed, int(self.step[0])]).generate_state(1)[0])

    def train_step(self, x, y) -> float:
        """One optimizer step on (x, y); the loss before it."""
        x, y = self.reference._check(x, y)
        return float(self.run(x, y, np.arange(len(x), dtype=np.int64)[None], len(x))[0][0])

    def gradients(self, x, y) -> tuple[float, list[np.ndarray]]:
        """The batch loss and its gradients [dW1, db1, ...], unscaled; no update. Without
        dropout, where MLP.gradients draws a mask (the masks are each network's own).

        ``_train``'s step on a copy of the weights, as SGD with learning rate 1 (whose
        gradients come unscaled and which reads no velocity or moments), its one batch the
        whole of x: no function of its own to compile. The loss is that epoch's mean,
        loss * n / n, as train_step's: within an ulp of the batch loss."""
        x, y = self.reference._check(x, y)
        state = (np.zeros(0, self.dtype), np.zeros((2, 0), self.dtype), np.zeros(1, np.int64))
        losses, _ = _train(self.flat.copy(), self.grads, *self._args()[1:], self.loss_kind,
                           UNSCALED, *state, *_as_compiled(x, y),
                           np.arange(len(x), dtype=np.int64)[None], len(x), 0.0, 0)
        return float(losses[0]), [g.copy() for g in _views(self.grads, self.sizes)]

    def predict(self, x, batch_size: int | None = None) -> np.ndarray:
        (x,) = _as_compiled(self.reference._check(x))
        out = np.empty((len(x), self.sizes[-1]), self.dtype)
        _inference(*self._args(), -1, x, out, _batch(batch_size, len(x)), out)
        return out

    def evaluate(self, x, y, batch_size: int | None = None) -> float:
        x, y = _as_compiled(*self.reference._check(x, y))
        out = np.empty((len(x), self.sizes[-1]), self.dtype)
        return float(_inference(*self._args(), self.loss_kind, x, y, _batch(batch_size, len(x)),
                                out))

    def get_weights(self) -> list[np.ndarray]:
        return [p.copy() for p in self.params]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.reference.set_weights(weights)  # its checks: count and shapes
        self.flat[...] = self.reference.flat_params

    def get_config(self) -> dict:
        return {**self.reference.get_config(), "backprop": "shortcut, compiled"}

    def __repr__(self) -> str:
        return f"Compiled{self.reference!r}"



class CompiledSeedBatchedMLP:
    """scratch.seeds.SeedBatchedMLP compiled: ``CompiledMLP(..., seed=s)`` for every seed in
    ``seeds``, trained at once, one compiled call for any number of epochs. Every parameter
    holds its seeds side by side in memory, and the innermost loop of every step runs over
    them. Shortcut mode, file order, no dropout, as SeedBatchedMLP."""

    def __init__(self, sizes, activations, loss, optimizer="sgd", *, seeds,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 dtype: str = "float32"):
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("CompiledSeedBatchedMLP needs at least one seed.")
        kwargs = {"dtype": dtype, "kernel_initializer": kernel_initializer,
                  "bias_initializer": bias_initializer}
        # seed 0's compiled network (sizes, loss, optimizer, ...); every seed's initial weights
        # from its scratch network, as CompiledMLP takes them
        self.single = CompiledMLP(sizes, activations, loss, optimizer, seed=seeds[0], **kwargs)
        self.seeds = seeds
        self._allocate(np.stack([MLP(sizes, activations, loss, optimizer, seed=s,
                                     **kwargs).flat_params for s in seeds], axis=1))
        self.step = np.zeros(1, np.int64)

    @classmethod
    def from_architecture(cls, arch: Architecture, optimizer="sgd", **kwargs):
        if arch.dropout:
            raise ValueError("CompiledSeedBatchedMLP trains without dropout; use CompiledMLP.")
        return cls(arch.sizes, arch.activations, arch.loss, optimizer, **kwargs)

    def _allocate(self, columns: np.ndarray) -> None:
        """The parameters from ``columns`` (P, S), zeroed gradients and optimizer state, and
        ``params``: [W1, b1, ...] seen as (S, n_in, n_out) and (S, n_out)."""
        self.flat = np.ascontiguousarray(columns).reshape(-1)
        self.grads, self.velocity = np.zeros_like(self.flat), np.zeros_like(self.flat)
        self.moments = np.zeros((2, self.flat.size), self.flat.dtype)
        self.params = _views(self.flat, self.single.sizes, len(self.seeds))

    def fit(self, x, y, epochs: int = 1, batch_size: int | None = None) -> np.ndarray:
        """Train every seed on the same batches, in file order (full batch by default);
        each seed's mean loss an epoch, (epochs, S). A seed whose loss stops being finite
        carries NaN from then on; the other seeds are untouched."""
        x, y = self.single.reference._check(x, y)
        batch = len(x) if batch_size is None else batch_size
        _check_positive_int("batch_size", batch)
        _check_positive_int("epochs", epochs, allow_zero=True)
        m = self.single
        return _train_seeds(self.flat, self.grads, m.layer_sizes, m.kinds, m.slopes,
                            m.loss_kind, m.opt, self.velocity, self.moments, self.step,
                            *_as_compiled(x, y), epochs, min(batch, len(x)), len(self.seeds))

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Every seed's predictions, (S, n, K): all of x in one pass, as SeedBatchedMLP's
        (``batch_size``, the same verbs' argument, is checked and changes nothing)."""
        x = self.single.reference._check(x)
        return self._inference(x, x, -1, batch_size)[0]  # no loss: x stands in for y

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None
                 ) -> np.ndarray:
        """Every seed's mean loss over (x, y), (S,), in the stack's dtype, as SeedBatchedMLP's
        (all of x in one pass: ``batch_size`` is checked and changes nothing)."""
        x, y = self.single.reference._check(x, y)
        return self._inference(x, y, self.single.loss_kind, batch_size)[1].astype(self.flat.dtype)

    def _inference(self, x, y, loss: int, batch_size) -> tuple[np.ndarray, np.ndarray]:
        """Every seed's outputs (S, n, K), and with a ``loss`` (>= 0) its mean loss (S,)."""
        _batch(batch_size, len(x))
        x, y = _as_compiled(x, y)
        m, values = self.single, np.zeros(len(self.seeds))
        out = _seed_inference(self.flat, m.layer_sizes, m.kinds, m.slopes, loss, x, y,
                              len(self.seeds), values)
        return np.ascontiguousarray(np.moveaxis(out, -1, 0)), values

    def subset(self, positions) -> CompiledSeedBatchedMLP:
        """The seeds at ``positions`` only, each with its weights and optimizer state as
        they are here (SeedBatchedMLP.subset)."""
        positions = list(positions)
        new = copy.copy(self)
        new.seeds = [self.seeds[p] for p in positions]
        width = len(self.seeds)
        new._allocate(self.flat.reshape(-1, width)[:, positions])
        new.velocity[:] = self.velocity.reshape(-1, width)[:, positions].reshape(-1)
        new.moments[:] = self.moments.reshape(2, -1, width)[:, :, positions].reshape(2, -1)
        new.step = self.step.copy()
        return new

    def seed_weights(self, i: int) -> list[np.ndarray]:
        """Copies of seed number i's [W1, b1, W2, b2, ...], as its CompiledMLP's get_weights."""
        return [p[i].copy() for p in self.params]

    def __repr__(self) -> str:
        return f"CompiledSeedBatched{self.single.reference!r}"[:-1] + f", seeds={len(self.seeds)})"


def _batch(batch_size: int | None, n: int) -> int:
    """Samples a batch of inference: ``batch_size`` (default all), at most ``n``."""
    if batch_size is not None:
        _check_positive_int("batch_size", batch_size)
    return max(1, min(n if batch_size is None else batch_size, n))


def _as_compiled(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays C-contiguous and writable (copies where they are not), as ``warm``
    compiled the functions for them: another layout, or a read-only array, would compile
    them again (about 20 s)."""
    return [np.require(a, requirements="CW") for a in arrays]


def _loss_kind(loss: loss_lib.Loss, output: activation_lib.Activation) -> int:
    if loss.name == "mean_squared_error":
        return MSE
    if loss.name == "categorical_crossentropy" and output.name == "softmax":
        return FUSED_CCE
    if loss.name == "binary_crossentropy" and output.name == "sigmoid":
        return FUSED_BCE
    raise ValueError(f"The compiled network has no {loss.name} on a {output.name} output "
                     "(a cross-entropy fuses with its own output activation); scratch.MLP has.")


# SGD with learning rate 1: its gradients are not scaled (CompiledMLP.gradients).
UNSCALED = np.array([SGD, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0], np.float64)


def _optimizer_vector(opt: optimizer_lib.Optimizer) -> np.ndarray:
    """The optimizer's hyperparameters as ``_update`` reads them."""
    kv = optimizer_lib.keras_value
    if isinstance(opt, optimizer_lib.SGD):
        return np.array([SGD, opt.learning_rate, opt.momentum, opt.nesterov, 0, 0, 0,
                         kv(opt.learning_rate), kv(opt.momentum), 0, 0], np.float64)
    return np.array([ADAM, opt.learning_rate, 0, 0, opt.beta_1, opt.beta_2, opt.epsilon,
                     kv(opt.learning_rate), 0, kv(opt.beta_1), kv(opt.beta_2)], np.float64)


def _views(flat: np.ndarray, sizes, seeds: int | None = None) -> list[np.ndarray]:
    """[W1, b1, W2, b2, ...] as views of ``flat``, scratch.MLP's layout; with ``seeds``
    (a count, 0 included), each parameter's seeds side by side, seen seed axis first."""
    out, offset, width = [], 0, 1 if seeds is None else seeds
    for n_in, n_out in zip(sizes, sizes[1:]):
        for shape in ((n_in, n_out), (n_out,)):
            size = int(np.prod(shape)) * width
            view = flat[offset:offset + size]
            out.append(view.reshape(*shape, seeds).transpose(-1, *range(len(shape)))
                       if seeds is not None else view.reshape(shape))
            offset += size
    return out


def warm(dtype: str) -> None:
    """Compile every function of CompiledMLP and CompiledSeedBatchedMLP for ``dtype``, or
    load them from Numba's cache on disk. `make` runs it once for each dtype as it
    installs, in a process each (Numba compiles on one core), so that no test or run pays
    for compilation; the two networks share their activations' functions, compiled once a
    dtype."""
    x, y = np.zeros((4, 2), dtype), np.zeros((4, 1), dtype)
    model = CompiledMLP((2, 2, 1), ("sigmoid", "sigmoid"), "mean_squared_error", dtype=dtype)
    model.fit(x, y, batch_size=2)
    model.train_step(x, y)
    model.gradients(x, y)
    model.predict(x)
    model.evaluate(x, y)
    stack = CompiledSeedBatchedMLP((2, 2, 1), ("sigmoid", "sigmoid"), "mean_squared_error",
                                   seeds=[0, 1], dtype=dtype)
    stack.fit(x, y)
    stack.evaluate(x, y)  # predict's function too

__all__ = ["CompiledMLP", "CompiledSeedBatchedMLP", "warm"]
