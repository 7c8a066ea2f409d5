# mps3-an547: compiler flags, kernel variant and extra sources (see boards/README.md).
set(TM_CPU_FLAGS "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard")
set(TM_BOARD_KERNELS ref)
set(TM_BOARD_NUM_IRQS 96)
set(TM_BOARD_SOURCES ${TM_FIRMWARE_DIR}/drivers/uart_cmsdk.c ${TM_FIRMWARE_DIR}/drivers/board_mps.c)
# UART0 at its Secure alias (we run Secure); PCLK 25 MHz, core 32 MHz.
set(TM_BOARD_DEFINES TM_BOARD_NAME="mps3-an547" TM_CORE_CLOCK_HZ=32000000u TM_UART_BASE=0x59303000u TM_UART_CLOCK_HZ=25000000u)
