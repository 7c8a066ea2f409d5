# Board folders: listing them, reading a board's facts from its board.toml (the only place they are
# written), checking them, and turning them into compiler flags, definitions and sources.
#
# board.toml is read line by line, enough for the subset boards/README.md documents: one
# `key = value` per line, a value being an integer (hex or decimal), a "string" without escapes, or a
# one-line ["array", "of", "strings"], each optionally followed by a # comment. The Python registry
# (toolchain/boards.py) reads the same file with a full TOML parser and checks the same rules.

# Every folder of boards/ that has a board.toml, sorted.
function(tm_list_boards out)
    file(GLOB tomls RELATIVE "${TM_ROOT}/boards" "${TM_ROOT}/boards/*/board.toml")
    set(names "")
    foreach(toml IN LISTS tomls)
        get_filename_component(name "${toml}" DIRECTORY)
        list(APPEND names "${name}")
    endforeach()
    list(SORT names)
    set(${out} "${names}" PARENT_SCOPE)
endfunction()

# "[section]" for messages; the keys before any table header are the top level (section "").
function(_tm_toml_where section out)
    if(section STREQUAL "")
        set(${out} "at the top level" PARENT_SCOPE)
    else()
        set(${out} "in [${section}]" PARENT_SCOPE)
    endif()
endfunction()

# The text after `key =` on its line under [section] of a board.toml, or a fatal error if absent.
function(_tm_toml_value toml section key out)
    file(STRINGS "${toml}" lines)
    set(current "")
    foreach(line IN LISTS lines)
        if(line MATCHES "^[ \t]*\\[([^]]+)\\][ \t]*(#.*)?$")
            string(STRIP "${CMAKE_MATCH_1}" current)
        elseif(current STREQUAL section AND line MATCHES "^[ \t]*${key}[ \t]*=[ \t]*(.*)$")
            set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
            return()
        endif()
    endforeach()
    _tm_toml_where("${section}" where)
    message(FATAL_ERROR "${toml}: no '${key}' ${where} (see boards/README.md)")
endfunction()

# Reads the integer `key = value` under [section] of a board.toml (hex or decimal) into out.
function(tm_toml_int toml section key out)
    _tm_toml_value("${toml}" "${section}" "${key}" text)
    if(NOT text MATCHES "^(0x[0-9A-Fa-f_]+|[0-9_]+)[ \t]*(#.*)?$")
        _tm_toml_where("${section}" where)
        message(FATAL_ERROR "${toml}: '${key}' ${where} must be an integer (hex or decimal), not: ${text}")
    endif()
    string(REPLACE "_" "" value "${CMAKE_MATCH_1}")
    math(EXPR value "${value}")
    set(${out} "${value}" PARENT_SCOPE)
endfunction()

# Reads the string `key = "value"` under [section] of a board.toml into out.
function(tm_toml_string toml section key out)
    _tm_toml_value("${toml}" "${section}" "${key}" text)
    if(NOT text MATCHES "^\"([^\"\\]*)\"[ \t]*(#.*)?$")
        _tm_toml_where("${section}" where)
        message(FATAL_ERROR "${toml}: '${key}' ${where} must be a \"string\" (without escapes), not: ${text}")
    endif()
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()

# Reads the one-line array of strings `key = ["a", "b"]` under [section] of a board.toml into the
# CMake list out.
function(tm_toml_strings toml section key out)
    _tm_toml_value("${toml}" "${section}" "${key}" text)
    _tm_toml_where("${section}" where)
    set(expected "'${key}' ${where} must be a one-line array of strings like [\"a\", \"b\"], not: ${text}")
    if(NOT text MATCHES "^\\[([^]]*)\\][ \t]*(#.*)?$")
        message(FATAL_ERROR "${toml}: ${expected}")
    endif()
    string(STRIP "${CMAKE_MATCH_1}" items)
    set(values "")
    if(NOT items STREQUAL "")
        string(REPLACE "," ";" items "${items}")
        foreach(item IN LISTS items)
            if(NOT item MATCHES "^[ \t]*\"([^\"\\]*)\"[ \t]*$")
                message(FATAL_ERROR "${toml}: ${expected}")
            endif()
            list(APPEND values "${CMAKE_MATCH_1}")
        endforeach()
    endif()
    set(${out} "${values}" PARENT_SCOPE)
endfunction()

# Reads ORIGIN and LENGTH of a MEMORY region of a memory.ld (hex or decimal, no K/M suffixes).
function(tm_ld_region ld region out_origin out_length)
    file(READ "${ld}" text)
    set(number "(0x[0-9A-Fa-f]+|[0-9]+)")
    if(NOT text MATCHES "${region}[ \t]*\\([a-z]*\\)[ \t]*:[ \t]*ORIGIN[ \t]*=[ \t]*${number}[ \t]*,[ \t]*LENGTH[ \t]*=[ \t]*${number}")
        message(FATAL_ERROR "${ld}: no '${region} (..) : ORIGIN = <number>, LENGTH = <number>' line")
    endif()
    math(EXPR origin "${CMAKE_MATCH_1}")
    math(EXPR length "${CMAKE_MATCH_2}")
    set(${out_origin} "${origin}" PARENT_SCOPE)
    set(${out_length} "${length}" PARENT_SCOPE)
endfunction()

# Reads and checks the board in folder dir (named name) and sets, in the caller's scope:
#   TM_CPU_FLAGS          -mcpu/-mthumb/-mfloat-abi/-mfpu, from `cpu` and `fpu`
#   TM_BOARD_KERNELS      `kernels`
#   TM_BOARD_NUM_IRQS     `num_irqs`
#   TM_BOARD_DEFINES      TM_BOARD_NAME, TM_CORE_CLOCK_HZ, TM_UART_BASE, TM_UART_CLOCK_HZ
#   TM_BOARD_SOURCES      firmware/drivers/uart_<[uart] driver>.c, then the folder's *.c, or (none
#                         there) firmware/drivers/board_mps.c, the board support of the MPS images
function(tm_board_config dir name)
    set(toml "${dir}/board.toml")
    foreach(file board.toml memory.ld)
        if(NOT EXISTS "${dir}/${file}")
            message(FATAL_ERROR "board ${name}: ${dir}/${file} is missing (see boards/README.md)")
        endif()
    endforeach()

    tm_toml_string("${toml}" "" name toml_name)
    if(NOT toml_name STREQUAL name)
        message(FATAL_ERROR "${toml}: name must be \"${name}\", like its folder (not \"${toml_name}\")")
    endif()

    tm_toml_string("${toml}" "" cpu cpu)
    tm_toml_string("${toml}" "" fpu fpu)
    tm_toml_strings("${toml}" "" features features)
    if(NOT cpu MATCHES "^cortex-m[0-9a-z.+-]+$")
        message(FATAL_ERROR "${toml}: cpu must be a GCC -mcpu name like \"cortex-m4\", not \"${cpu}\"")
    endif()
    foreach(feature IN LISTS features)
        if(NOT feature MATCHES "^(dsp|fpu|mve|trustzone)$")
            message(FATAL_ERROR "${toml}: unknown feature \"${feature}\" (features: dsp, fpu, mve, trustzone)")
        endif()
    endforeach()
    set(flags "-mcpu=${cpu} -mthumb")
    if(fpu STREQUAL "none")
        if("fpu" IN_LIST features)
            message(FATAL_ERROR "${toml}: fpu = \"none\" but features has \"fpu\"")
        endif()
        string(APPEND flags " -mfloat-abi=soft")
    elseif(fpu MATCHES "^(auto|fpv[0-9a-z-]+)$")
        if(NOT "fpu" IN_LIST features)
            message(FATAL_ERROR "${toml}: fpu = \"${fpu}\" but features lacks \"fpu\" (a board without one: fpu = \"none\")")
        endif()
        string(APPEND flags " -mfloat-abi=hard")
        if(NOT fpu STREQUAL "auto")
            string(APPEND flags " -mfpu=${fpu}")
        endif()
    else()
        message(FATAL_ERROR "${toml}: fpu must be \"none\", \"auto\" or a GCC -mfpu name like \"fpv4-sp-d16\", "
                            "not \"${fpu}\"")
    endif()

    tm_toml_int("${toml}" "" clock_hz clock_hz)
    tm_toml_int("${toml}" "" num_irqs num_irqs)
    tm_toml_string("${toml}" "" kernels kernels)
    # The kernel path and the core feature it needs (toolchain/boards.py KERNEL_PATH_FEATURES).
    if(kernels STREQUAL "dsp" AND NOT "dsp" IN_LIST features)
        message(FATAL_ERROR "${toml}: kernels = \"dsp\" needs features \"dsp\"")
    elseif(kernels STREQUAL "mve" AND NOT ("dsp" IN_LIST features AND "mve" IN_LIST features))
        message(FATAL_ERROR "${toml}: kernels = \"mve\" needs features \"dsp\" and \"mve\"")
    elseif(NOT kernels MATCHES "^(ref|dsp|mve|cmsis-nn)$")
        message(FATAL_ERROR "${toml}: kernels must be one of ref, dsp, mve, cmsis-nn, not \"${kernels}\"")
    endif()
    if(clock_hz LESS_EQUAL 0)
        message(FATAL_ERROR "${toml}: clock_hz must be positive")
    endif()
    if(num_irqs LESS 1 OR num_irqs GREATER 496)
        message(FATAL_ERROR "${toml}: num_irqs must be 1 to 496 (the external interrupts of the core), not ${num_irqs}")
    endif()

    tm_toml_string("${toml}" uart driver uart_driver)
    tm_toml_int("${toml}" uart base uart_base)
    tm_toml_int("${toml}" uart clock_hz uart_clock_hz)
    set(uart_source "${TM_FIRMWARE_DIR}/drivers/uart_${uart_driver}.c")
    if(NOT uart_driver MATCHES "^[a-z0-9_]+$" OR NOT EXISTS "${uart_source}")
        file(GLOB drivers RELATIVE "${TM_FIRMWARE_DIR}/drivers" "${TM_FIRMWARE_DIR}/drivers/uart_*.c")
        string(REGEX REPLACE "uart_([a-z0-9_]+)\\.c" "\\1" drivers "${drivers}")
        string(REPLACE ";" ", " drivers "${drivers}")
        message(FATAL_ERROR "${toml}: [uart] driver \"${uart_driver}\" has no firmware/drivers/uart_<driver>.c "
                            "(drivers: ${drivers})")
    endif()
    if(uart_clock_hz LESS_EQUAL 0)
        message(FATAL_ERROR "${toml}: [uart] clock_hz must be positive")
    endif()

    foreach(pair "flash;FLASH" "ram;RAM")
        list(GET pair 0 section)
        list(GET pair 1 region)
        tm_toml_int("${toml}" "memory.${section}" origin toml_origin)
        tm_toml_int("${toml}" "memory.${section}" size toml_size)
        tm_ld_region("${dir}/memory.ld" "${region}" ld_origin ld_length)
        if(NOT toml_origin EQUAL ld_origin OR NOT toml_size EQUAL ld_length)
            message(FATAL_ERROR "board ${name}: memory.ld ${region} (origin ${ld_origin}, length ${ld_length}) "
                                "differs from board.toml [memory.${section}] (origin ${toml_origin}, size ${toml_size})")
        endif()
    endforeach()

    file(GLOB board_c CONFIGURE_DEPENDS RELATIVE "${dir}" "${dir}/*.c")
    list(SORT board_c)
    list(TRANSFORM board_c PREPEND "${dir}/")
    if(NOT board_c)
        if(NOT uart_driver STREQUAL "cmsdk")
            message(FATAL_ERROR "board ${name}: no board.c, and firmware/drivers/board_mps.c (for boards without "
                                "one) drives a CMSDK UART, not \"${uart_driver}\": write ${dir}/board.c")
        endif()
        set(board_c "${TM_FIRMWARE_DIR}/drivers/board_mps.c")
    endif()

    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${toml}" "${dir}/memory.ld")
    math(EXPR uart_base_hex "${uart_base}" OUTPUT_FORMAT HEXADECIMAL)
    set(TM_CPU_FLAGS "${flags}" PARENT_SCOPE)
    set(TM_BOARD_KERNELS "${kernels}" PARENT_SCOPE)
    set(TM_BOARD_NUM_IRQS "${num_irqs}" PARENT_SCOPE)
    set(TM_BOARD_DEFINES "TM_BOARD_NAME=\"${name}\"" "TM_CORE_CLOCK_HZ=${clock_hz}u" "TM_UART_BASE=${uart_base_hex}u"
                         "TM_UART_CLOCK_HZ=${uart_clock_hz}u" PARENT_SCOPE)
    set(TM_BOARD_SOURCES "${uart_source}" ${board_c} PARENT_SCOPE)
endfunction()
