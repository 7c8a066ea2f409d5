# mps2-an386: compiler flags, kernel variant and extra sources (see boards/README.md).
set(TM_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(TM_BOARD_KERNELS ref)
set(TM_BOARD_NUM_IRQS 32)
set(TM_BOARD_SOURCES ${TM_FIRMWARE_DIR}/drivers/uart_cmsdk.c)
