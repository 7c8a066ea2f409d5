# mps2-an505: compiler flags, kernel variant and extra sources (see boards/README.md).
set(TM_CPU_FLAGS "-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16")
set(TM_BOARD_KERNELS ref)
set(TM_BOARD_NUM_IRQS 92)
set(TM_BOARD_SOURCES ${TM_FIRMWARE_DIR}/drivers/uart_cmsdk.c ${TM_FIRMWARE_DIR}/drivers/board_mps.c)
# UART0 at its Secure alias (we run Secure); PCLK = the 20 MHz system clock.
set(TM_BOARD_DEFINES TM_BOARD_NAME="mps2-an505" TM_CORE_CLOCK_HZ=20000000u TM_UART_BASE=0x50200000u TM_UART_CLOCK_HZ=20000000u)
