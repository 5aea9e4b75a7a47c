# CUDA for the trainer (train/) and its GPU benchmark (bench/train/): found once, at the root,
# so the language and its targets are known to both folders.
# AUTO builds the CUDA backend when nvcc works, ON requires it, OFF never builds it.
set(WSLQ_CUDA AUTO CACHE STRING "CUDA backend and NCCL transport: AUTO, ON or OFF")
set_property(CACHE WSLQ_CUDA PROPERTY STRINGS AUTO ON OFF)
# The consumer cards labs own, Turing (sm_75, still supported by CUDA 13.0) to Blackwell
# (sm_120), plus Hopper (sm_90) and data-centre Blackwell (sm_100): SASS for each, and PTX for
# sm_120 so newer GPUs JIT it. Measured: ~14 s for kernels.cu on one core of the 2-core CI VM.
set(WSLQ_CUDA_ARCHITECTURES_DEFAULT "75-real;80-real;86-real;89-real;90-real;100-real;120")

# Where a toolkit usually is, also when nvcc is not on PATH (root shells, systemd units).
find_program(WSLQ_NVCC nvcc HINTS ENV CUDA_PATH PATH_SUFFIXES bin PATHS /usr/local/cuda/bin)
mark_as_advanced(WSLQ_NVCC)
# What the cuda_built test expects: a CUDA backend whenever nvcc exists and nobody said OFF
# (or pointed CMAKE_CUDA_COMPILER at something that does not exist, i.e. "no CUDA").
set(WSLQ_EXPECT_CUDA OFF)
if(NOT WSLQ_CUDA STREQUAL "OFF")
  if(DEFINED CMAKE_CUDA_COMPILER)
    if(CMAKE_CUDA_COMPILER AND EXISTS "${CMAKE_CUDA_COMPILER}")
      set(WSLQ_EXPECT_CUDA ON)
    endif()
  elseif(WSLQ_NVCC OR DEFINED ENV{CUDACXX})
    set(WSLQ_EXPECT_CUDA ON)
  endif()
endif()

set(WSLQ_HAVE_CUDA OFF)
set(WSLQ_HAVE_NCCL OFF)
if(NOT WSLQ_CUDA STREQUAL "OFF")
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND WSLQ_NVCC)
    set(ENV{CUDACXX} "${WSLQ_NVCC}") # check_language's probe inherits the environment
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER AND EXISTS "${CMAKE_CUDA_COMPILER}")
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "${WSLQ_CUDA_ARCHITECTURES_DEFAULT}" CACHE STRING
          "CUDA architectures for kernels.cu (e.g. 75 for a quicker dev build)")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(WSLQ_HAVE_CUDA ON)
    find_path(WSLQ_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV NCCL_HOME
              PATH_SUFFIXES include)
    find_library(WSLQ_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ENV NCCL_HOME
                 PATH_SUFFIXES lib lib64)
    if(WSLQ_NCCL_INCLUDE AND WSLQ_NCCL_LIBRARY)
      set(WSLQ_HAVE_NCCL ON)
    endif()
  elseif(WSLQ_CUDA STREQUAL "ON")
    message(FATAL_ERROR "WSLQ_CUDA=ON but no working CUDA compiler was found")
  endif()
endif()
message(STATUS "wslq-train: CUDA backend ${WSLQ_HAVE_CUDA}, NCCL transport ${WSLQ_HAVE_NCCL}"
               " (expected CUDA: ${WSLQ_EXPECT_CUDA})")
