"""Writers of deployable model files (int8 TFLite) from Keras models."""
