"""Eight float64 lanes as one value in numba code: the lanes of eight independent problems solved together.

A :data:`vec8` value is LLVM's ``<8 x double>``: one AVX-512 register (two AVX2 registers, or four SSE2 ones, where
the CPU has no AVX-512), whatever the target.  The functions here load, compute and store such values from and to
float64 arrays (offsets in elements; eight consecutive floats are one value).  They exist because numba vectorises
only loops it can prove free of aliasing, with a trip count long enough to pay for the checks; the kernels that
solve eight small windows at once (:mod:`leopardgeo.kernels._omniscape_compiled`) have the lanes as the innermost
axis and need every scalar operation of their algorithm to be one vector operation, with no remainder loops.

Every lane gets exactly the operations of the scalar expression it stands for (``vfma`` is rounded once, as
``math.fma``), so a lane's results do not depend on the other lanes, the batch or the thread.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, overload, register_model

#: The number of lanes.
LANES = 8

_VT = ir.VectorType(ir.DoubleType(), LANES)


class Vec8Type(types.Type):
    """Numba type of eight float64 lanes held as one ``<8 x double>``."""

    def __init__(self) -> None:
        super().__init__(name="Vec8")


vec8 = Vec8Type()


@register_model(Vec8Type)
class _Vec8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VT)


def _pointer(context, builder, arrty, arr, off, offty, elem):
    a = context.make_array(arrty)(context, builder, arr)
    off = context.cast(builder, off, offty, types.intp)
    p = builder.gep(a.data, [off], inbounds=True)
    return builder.bitcast(p, elem.as_pointer())


@intrinsic
def vload(typingctx, arr, off):
    """The 8 floats of C-contiguous float64 ``arr`` from flat element ``off``."""

    def codegen(context, builder, sig, args):
        return builder.load(_pointer(context, builder, sig.args[0], args[0], args[1], sig.args[1], _VT), align=8)

    return vec8(arr, off), codegen


@intrinsic
def vbcast(typingctx, arr, off):
    """The float at flat element ``off`` of C-contiguous float64 ``arr``, in every lane."""

    def codegen(context, builder, sig, args):
        x = builder.load(_pointer(context, builder, sig.args[0], args[0], args[1], sig.args[1], ir.DoubleType()), align=8)
        return _splat(builder, x)

    return vec8(arr, off), codegen


@intrinsic
def vstore(typingctx, arr, off, v):
    """Store ``v`` in the 8 floats of C-contiguous float64 ``arr`` from flat element ``off``."""

    def codegen(context, builder, sig, args):
        builder.store(args[2], _pointer(context, builder, sig.args[0], args[0], args[1], sig.args[1], _VT), align=8)
        return context.get_dummy_value()

    return types.none(arr, off, v), codegen


def _splat(builder, x):
    v = builder.insert_element(ir.Constant(_VT, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
    return builder.shuffle_vector(v, ir.Constant(_VT, ir.Undefined), mask)


@intrinsic
def vsplat(typingctx, x):
    """``x`` (a float) in every lane."""

    def codegen(context, builder, sig, args):
        return _splat(builder, context.cast(builder, args[0], sig.args[0], types.float64))

    return vec8(x), codegen


def _binary(op: str):
    @intrinsic
    def fn(typingctx, a, b):
        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1])

        return vec8(vec8, vec8), codegen

    return fn


vadd = _binary("fadd")
vadd.__doc__ = "``a + b`` lane by lane."
vsub = _binary("fsub")
vsub.__doc__ = "``a - b`` lane by lane."
vmul = _binary("fmul")
vmul.__doc__ = "``a * b`` lane by lane."
vdiv = _binary("fdiv")
vdiv.__doc__ = "``a / b`` lane by lane."


def _llvm_call(name: str, nargs: int):
    def codegen(context, builder, sig, args):
        f = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VT, [_VT] * nargs), name)
        return builder.call(f, list(args))

    if nargs == 1:

        @intrinsic
        def fn1(typingctx, a):
            return vec8(vec8), codegen

        return fn1

    @intrinsic
    def fn3(typingctx, a, b, c):
        return vec8(vec8, vec8, vec8), codegen

    return fn3


vfma = _llvm_call("llvm.fma.v8f64", 3)
vfma.__doc__ = "``a * b + c`` lane by lane, rounded once."
vsqrt = _llvm_call("llvm.sqrt.v8f64", 1)
vsqrt.__doc__ = "The square root of each lane."
vabs = _llvm_call("llvm.fabs.v8f64", 1)
vabs.__doc__ = "The absolute value of each lane."


@intrinsic
def vany(typingctx, a):
    """True when a lane is not zero (NaN counts as not zero)."""

    def codegen(context, builder, sig, args):
        m = builder.fcmp_unordered("!=", args[0], ir.Constant(_VT, [0.0] * LANES))
        bits = builder.bitcast(m, ir.IntType(LANES))
        return builder.icmp_unsigned("!=", bits, ir.Constant(ir.IntType(LANES), 0))

    return types.boolean(vec8), codegen


def vlane(arr, off):
    """Element ``off`` of ``arr`` as eight lanes.

    A 1-D array holds one float per element (the same in every lane), an array of more dimensions eight (the
    last axis, of length 8), one per lane.
    """
    raise NotImplementedError  # compiled only


@overload(vlane, inline="always")
def _vlane(arr, off):
    if arr.ndim == 1:
        return lambda arr, off: vbcast(arr, off)
    return lambda arr, off: vload(arr, off * LANES)
