# The install test (CTest `install`, registered in CMakeLists.txt): installs the finished build
# into a fresh prefix, checks the layout, then configures, builds and runs examples/attention
# against the installed package with a separate CMake invocation, and runs the installed `focus`.
# The example links the installed libfocus.a: nothing of the library is compiled here, and the
# installed package must not point back into the source or build tree.
# Run: cmake -DSOURCE_DIR=.. -DBUILD_DIR=.. -DWORK_DIR=.. -DGENERATOR=.. -DCXX_COMPILER=..
#      -P tests/install/install_test.cmake
foreach(v SOURCE_DIR BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "install_test: -D${v}=... is required")
  endif()
endforeach()
set(prefix ${WORK_DIR}/prefix)
set(example_build ${WORK_DIR}/example-build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# Runs a command; fails the test with its output unless it exits 0. OUT receives stdout+stderr.
function(run step out)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE text ERROR_VARIABLE text)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_test: ${step} failed (${rc}):\n${text}")
  endif()
  message(STATUS "install_test: ${step}: ok")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()
function(expect_in text part what)
  string(FIND "${text}" "${part}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "install_test: ${what}: '${part}' not found in:\n${text}")
  endif()
endfunction()

run("cmake --install" text ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

file(GLOB_RECURSE config ${prefix}/*/focusConfig.cmake)
file(GLOB_RECURSE archive ${prefix}/*/libfocus.a)
foreach(f config archive)
  if(NOT ${f})
    message(FATAL_ERROR "install_test: no ${f} installed under ${prefix}")
  endif()
endforeach()
foreach(f bin/focus include/focus/ops/attention.hpp include/focus/io/safetensors.hpp
          include/focus/tensor/tensor.hpp)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install_test: ${prefix}/${f} was not installed")
  endif()
endforeach()
get_filename_component(cmake_dir ${config} DIRECTORY)
file(GLOB targets_files ${cmake_dir}/focusTargets*.cmake)
foreach(f ${targets_files})
  file(READ ${f} text)
  foreach(tree ${SOURCE_DIR} ${BUILD_DIR})
    string(FIND "${text}" "${tree}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "install_test: ${f} refers to ${tree}: the package is not relocatable")
    endif()
  endforeach()
endforeach()

# A consumer's own configure and build: only the prefix is given, the package registry is off.
run("configure the example" text ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/attention
    -B ${example_build} -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
expect_in("${text}" "focus package: ${cmake_dir}" "the example must find the installed package")
run("build the example" text ${CMAKE_COMMAND} --build ${example_build})
run("run the example" text ${example_build}/attention_example ${WORK_DIR})
message(STATUS "${text}")
expect_in("${text}" "focus example: OK" "the example's result")
expect_in("${text}" "kernel fused" "the example's attention kernel")

run("installed focus --version" text ${prefix}/bin/focus --version)
expect_in("${text}" "0.1" "focus --version")
file(REMOVE_RECURSE ${WORK_DIR})
