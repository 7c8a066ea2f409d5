# mps2-an385: compiler flags, kernel variant and extra sources (see boards/README.md).
set(TM_CPU_FLAGS "-mcpu=cortex-m3 -mthumb -mfloat-abi=soft")
set(TM_BOARD_KERNELS ref)
set(TM_BOARD_NUM_IRQS 32)
set(TM_BOARD_SOURCES ${TM_FIRMWARE_DIR}/drivers/uart_cmsdk.c ${TM_FIRMWARE_DIR}/drivers/board_mps.c)
# UART0 of the MPS2 FPGA image; PCLK = the 25 MHz system clock.
set(TM_BOARD_DEFINES TM_BOARD_NAME="mps2-an385" TM_CORE_CLOCK_HZ=25000000u TM_UART_BASE=0x40004000u TM_UART_CLOCK_HZ=25000000u)
