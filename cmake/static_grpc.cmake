# coffer_static_grpc(OUT): the link items that put gRPC and everything it needs into an executable
# statically (the archives Debian's -dev packages ship), leaving only libc and libm shared.
#
# Why: the coffer CLI starts in front of every runtime it launches. Loading libgrpc as shared
# libraries means 57 objects, all built with BIND_NOW: some 12,000 symbol lookups and 400 page
# faults before main, about 5 ms of every start. Linked statically, the CLI starts in about 1 ms.
# The price is that a security update of OpenSSL or gRPC reaches the CLI when it is rebuilt (the
# image build does that), the way a Go CLI carries its own TLS.
function(coffer_static_grpc out)
  set(items)
  foreach(lib ${GRPC_STATIC_LIBRARIES} protobuf-c sodium)
    if(lib MATCHES "^(dl|rt|pthread|m|c|atomic)$")
      continue()
    endif()
    string(MAKE_C_IDENTIFIER "COFFER_STATIC_${lib}" var)
    find_library(${var} NAMES lib${lib}.a)
    if(NOT ${var})
      message(FATAL_ERROR "COFFER_STATIC_CLI: lib${lib}.a not found (its Debian -dev package ships it); "
                          "or configure with -DCOFFER_STATIC_CLI=OFF")
    endif()
    list(APPEND items ${${var}})
  endforeach()
  list(REMOVE_DUPLICATES items)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libstdc++.a
                  OUTPUT_VARIABLE stdcxx OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT IS_ABSOLUTE "${stdcxx}" OR NOT EXISTS "${stdcxx}")
    message(FATAL_ERROR "COFFER_STATIC_CLI: libstdc++.a not found (Debian: libstdc++-12-dev)")
  endif()
  # One group, scanned until nothing new resolves: the archives' order then does not matter.
  set(${out} "$<LINK_GROUP:RESCAN,${items};${stdcxx}>" Threads::Threads m -static-libgcc PARENT_SCOPE)
endfunction()
