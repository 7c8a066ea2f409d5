# mps2-an385: compiler flags, kernel variant and extra sources (see boards/README.md).
set(TM_CPU_FLAGS "-mcpu=cortex-m3 -mthumb -mfloat-abi=soft")
set(TM_BOARD_KERNELS ref)
set(TM_BOARD_NUM_IRQS 32)
set(TM_BOARD_SOURCES ${TM_FIRMWARE_DIR}/drivers/uart_cmsdk.c)
