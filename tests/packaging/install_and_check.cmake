# SPDX-License-Identifier: MIT
# cmake -P: installs the runtime and development components of BUILD to a fresh STAGE prefix,
# then runs CHECK (check_consumers.sh) against it.
file(REMOVE_RECURSE "${STAGE}")
foreach(component runtime development)
  execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD}" --prefix "${STAGE}" --component ${component}
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "install of ${component} failed")
  endif()
endforeach()
execute_process(COMMAND "${CHECK}" "${STAGE}" "${STAGE}/${LIBDIR}" "${STAGE}-consumers" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "consumers failed against the install tree")
endif()
