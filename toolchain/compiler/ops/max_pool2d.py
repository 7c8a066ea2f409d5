from toolchain.compiler.ops.base import Pool2D, register
from toolchain.compiler.ops.params import MaxPool2DParams


@register("MAX_POOL_2D")
class MaxPool2D(Pool2D):

    constraints = "int8 NHWC, any window and stride, SAME or VALID, fused activation; int16 (windows up to 65536)"
    kernel = "tm_max_pool2d_s8"
    kernel_s16 = "tm_max_pool2d_s16"
    params = MaxPool2DParams

    def scratch_bytes(self, op, g):
        return 0  # tm_max_pool2d_s8_get_buffer_size (ref)
