#include "tm_support.h"

int32_t tm_max_s8(const int8_t *input, int32_t size)
{
    int32_t best = -128;
    for (int32_t i = 0; i < size; i++) {
        if (input[i] > best) {
            best = input[i];
        }
    }
    return best;
}
