# cmake -P cmake/check_public_includes.cmake -DROOT=<source dir>
# The tools are written on the public API only: every #include "..." in tools/ must name a file of
# tools/ itself (relative to the including file or to tools/) or a public header include/heterokv/*.
# Anything else — an internal header of src/ ("model/model.h"), or a path that climbs out with
# "..", fails with one line per violation. Run by the build (target hkv_public_includes) and by
# ctest (PublicIncludes.ToolsUseOnlyThePublicApi).
if(NOT ROOT)
  message(FATAL_ERROR "check_public_includes: -DROOT=<source dir> is required")
endif()
file(GLOB_RECURSE files "${ROOT}/tools/*.h" "${ROOT}/tools/*.cpp")
set(bad "")
foreach(f ${files})
  file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  get_filename_component(dir "${f}" DIRECTORY)
  foreach(line ${lines})
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*" "\\1" inc "${line}")
    set(ok FALSE)
    if(NOT inc MATCHES "\\.\\.")
      if(inc MATCHES "^heterokv/" AND EXISTS "${ROOT}/include/${inc}")
        set(ok TRUE)
      elseif(EXISTS "${dir}/${inc}" OR EXISTS "${ROOT}/tools/${inc}")
        set(ok TRUE)
      endif()
    endif()
    if(NOT ok)
      file(RELATIVE_PATH rel "${ROOT}" "${f}")
      list(APPEND bad "${rel}: #include \"${inc}\" is not a public header (include/heterokv/) nor a tools/ file")
    endif()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n" msg)
  message(FATAL_ERROR "tools/ must use only the public API:\n${msg}")
endif()
