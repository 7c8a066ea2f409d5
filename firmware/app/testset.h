/* The embedded test set, generated next to the model (MODEL_DIR/testset.c) by `tinyml build`/`run`. */
#ifndef TM_TESTSET_H
#define TM_TESTSET_H

#include <stdint.h>

#include "model.h"

extern const uint32_t tm_testset_count;
/* tm_testset_count inputs of TM_MODEL_INPUT_SIZE bytes each, read in place (flash). */
extern const uint8_t tm_testset_inputs[];
/* Expected class of each sample, or -1 when unknown. */
extern const int16_t tm_testset_labels[];
/* Exit threshold in the int8 softmax domain for early-exit models (ignored by single-exit models). */
extern const int32_t tm_testset_exit_threshold;

#endif /* TM_TESTSET_H */
