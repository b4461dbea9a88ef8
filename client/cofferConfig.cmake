# find_package(coffer) -> the imported target coffer::client.
include(CMakeFindDependencyMacro)
find_dependency(PkgConfig)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(GRPC REQUIRED IMPORTED_TARGET grpc)
pkg_check_modules(GPR REQUIRED IMPORTED_TARGET gpr)
include("${CMAKE_CURRENT_LIST_DIR}/cofferTargets.cmake")
