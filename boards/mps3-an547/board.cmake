# mps3-an547: compiler flags, kernel variant and extra sources (see boards/README.md).
set(TM_CPU_FLAGS "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard")
set(TM_BOARD_KERNELS ref)
set(TM_BOARD_NUM_IRQS 96)
set(TM_BOARD_SOURCES ${TM_FIRMWARE_DIR}/drivers/uart_cmsdk.c)
