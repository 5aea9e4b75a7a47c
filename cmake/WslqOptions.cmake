# Build switches shared by every folder, and the one helper that registers a test.
option(WSLQ_WERROR "Treat compiler warnings as errors (on in CI)" OFF)
set(WSLQ_SANITIZE "" CACHE STRING "Sanitizers to build with, e.g. address,undefined")
# The libFuzzer binaries of tests/fuzz (clang only; off: CI replays their corpus without them).
# Instruments the whole tree for them unless WSLQ_SANITIZE says otherwise.
option(WSLQ_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
if(WSLQ_FUZZ AND NOT WSLQ_SANITIZE)
  set(WSLQ_SANITIZE fuzzer-no-link,address,undefined)
endif()

add_compile_definitions(_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)

set(WSLQ_WARNINGS -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wvla -Wundef)
if(WSLQ_WERROR)
  list(APPEND WSLQ_WARNINGS -Werror)
endif()

if(WSLQ_SANITIZE)
  add_compile_options(-fsanitize=${WSLQ_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${WSLQ_SANITIZE})
endif()

# Every test runs with WQTEST_SUITE=<build dir> in its environment, which the processes it
# starts inherit (and the jobs of the workers it starts: a worker passes on all but WSLQ_*), and
# needs the fixture whose cleanup, the suite's last test (tests/leftovers.py), fails naming any
# process that still carries the mark.
function(wslq_suite_member name)
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "WQTEST_SUITE=${CMAKE_BINARY_DIR}")
  set_property(TEST ${name} APPEND PROPERTY FIXTURES_REQUIRED wslq_suite)
endfunction()

# wslq_add_test(name SOURCES ... [LIBS ...] [LABELS ...] [TIMEOUT s] [ARGS ...])
# One executable, one process, exit 77 = skipped.
function(wslq_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${WSLQ_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
                       SKIP_RETURN_CODE 77)
  wslq_suite_member(${name})
endfunction()

# wslq_add_script_test(name COMMAND ... [LABELS ...] [TIMEOUT s])
# A test driven by a script (integration tests); exit 77 = skipped.
function(wslq_add_script_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
                       SKIP_RETURN_CODE 77
                       ENVIRONMENT "WSLQ_BIN=${CMAKE_BINARY_DIR}/bin;WSLQ_SRC=${CMAKE_SOURCE_DIR}")
  wslq_suite_member(${name})
endfunction()

set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
