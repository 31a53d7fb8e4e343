"""A host bfloat16 array known only through DLPack, as a torch bfloat16
tensor is (NumPy has no bfloat16): the bits live in a uint16 NumPy array, and
__dlpack__ hands out a DLManagedTensor built with ctypes (dtype code
kDLBfloat). The tests use it where torch is not installed; dlpack_capsule
also describes device memory (test_emulated.py's CUDA arrays)."""
import ctypes

import numpy as np


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _Device), ("ndim", ctypes.c_int32),
                ("dtype", _DataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _ManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _Tensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


_capsule = ctypes.pythonapi.PyCapsule_New
_capsule.restype = ctypes.py_object
_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]

KDL_BFLOAT = 4


def dlpack_capsule(data, shape, device, code, bits, keep):
    """A "dltensor" capsule of a C-contiguous array at address `data`;
    the structures it points to join `keep` (their owner keeps them alive)."""
    dims = (ctypes.c_int64 * len(shape))(*shape)
    managed = _ManagedTensor()
    managed.dl_tensor = _Tensor(data, _Device(*device), len(shape),
                                _DataType(code, bits, 1), dims, None, 0)
    keep.append((dims, managed))
    return _capsule(ctypes.addressof(managed), b"dltensor", None)


class BFloat16Array:
    """`values` rounded to bfloat16 (to nearest, ties to even); `code` and
    `bits` let a test announce another DLPack dtype over the same bytes."""

    dtype = "bfloat16"

    def __init__(self, values, code=KDL_BFLOAT, bits=16):
        wide = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
        self.bits = ((wide + 0x7FFF + ((wide >> 16) & 1)) >> 16).astype(np.uint16)
        self.shape = self.bits.shape
        self.code, self.width = code, bits
        self._keep = []  # the structures handed out, alive as long as this

    def to_float32(self):
        return (self.bits.astype(np.uint32) << 16).view(np.float32)

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU

    def __dlpack__(self, stream=None, **kwargs):
        return dlpack_capsule(self.bits.ctypes.data, self.bits.shape, (1, 0), self.code,
                              self.width, self._keep)
