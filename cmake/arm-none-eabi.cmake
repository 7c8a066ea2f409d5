# CMake toolchain file: the GNU Arm Embedded toolchain (arm-none-eabi-gcc with full newlib).
# Used by the top-level CMakeLists.txt when no other CMAKE_TOOLCHAIN_FILE is given.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(TM_APT_HINT "install it with: sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")

find_program(TM_ARM_GCC arm-none-eabi-gcc)
if(NOT TM_ARM_GCC)
    message(FATAL_ERROR "arm-none-eabi-gcc not found on PATH: ${TM_APT_HINT}")
endif()
get_filename_component(TM_ARM_BIN "${TM_ARM_GCC}" DIRECTORY)

# The compiler alone is not enough: without newlib there is no libc.a (nor string.h) to link.
execute_process(COMMAND "${TM_ARM_GCC}" -print-file-name=libc.a
                OUTPUT_VARIABLE TM_ARM_LIBC OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT IS_ABSOLUTE "${TM_ARM_LIBC}")
    message(FATAL_ERROR "arm-none-eabi-gcc has no C library (newlib): ${TM_APT_HINT}")
endif()

set(CMAKE_C_COMPILER "${TM_ARM_GCC}")
set(CMAKE_ASM_COMPILER "${TM_ARM_GCC}")
find_program(CMAKE_OBJCOPY arm-none-eabi-objcopy HINTS "${TM_ARM_BIN}" REQUIRED)
find_program(CMAKE_SIZE arm-none-eabi-size HINTS "${TM_ARM_BIN}" REQUIRED)

# Compiler checks build a static library: a bare-metal executable cannot link without our startup.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
