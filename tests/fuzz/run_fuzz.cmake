# run_fuzz.cmake - a fuzz ctest: fuzz a fresh copy of the seed corpus for SECONDS.
# Usage: cmake -DFUZZER=bin -DCORPUS=dir -DWORK=dir -DSECONDS=n [-DDICT=file] -P run_fuzz.cmake
# (DICT empty or unset: no dictionary).
foreach(v FUZZER CORPUS WORK SECONDS)
    if(NOT DEFINED ${v})
        message(FATAL_ERROR "run_fuzz.cmake: ${v} is not set")
    endif()
endforeach()

# libFuzzer adds the inputs it finds to its first corpus directory: give it a copy.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${CORPUS}/*)
if(NOT seeds)
    message(FATAL_ERROR "run_fuzz.cmake: no seeds in ${CORPUS}")
endif()
file(COPY ${seeds} DESTINATION ${WORK}/corpus)

set(dict_arg)
if(DICT)
    set(dict_arg -dict=${DICT})
endif()

execute_process(
    COMMAND ${FUZZER} ${dict_arg} -max_total_time=${SECONDS} -max_len=4096 -timeout=10
            -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1
            -artifact_prefix=${WORK}/artifacts/ ${WORK}/corpus
    WORKING_DIRECTORY ${WORK}
    RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "fuzzer exited with ${rc}; the failing input is in ${WORK}/artifacts")
endif()
