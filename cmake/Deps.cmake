# Every external library comes from Debian packages (scripts/deps.sh installs
# them). One interface target, drst_deps, carries them all to libdrst.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

set(DRST_PC_MODULES jansson libcurl rdkafka libpcap liburcu ck libmicrohttpd libcrypto
    libxxhash inih openblas)
pkg_check_modules(DRST_PC REQUIRED IMPORTED_TARGET ${DRST_PC_MODULES})

# libxgboost ships no pkg-config file.
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h REQUIRED)
find_library(XGBOOST_LIBRARY xgboost REQUIRED)

add_library(drst_deps INTERFACE)
target_link_libraries(drst_deps INTERFACE PkgConfig::DRST_PC ${XGBOOST_LIBRARY} Threads::Threads m)
target_include_directories(drst_deps INTERFACE ${XGBOOST_INCLUDE_DIR})

# cmocka is in the build package list: the unit tests are built with the tool.
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
