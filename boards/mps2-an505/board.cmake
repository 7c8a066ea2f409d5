# mps2-an505: compiler flags, kernel variant and extra sources (see boards/README.md).
set(TM_CPU_FLAGS "-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16")
set(TM_BOARD_KERNELS ref)
set(TM_BOARD_NUM_IRQS 92)
set(TM_BOARD_SOURCES ${TM_FIRMWARE_DIR}/drivers/uart_cmsdk.c)
