# Every external library comes from Debian packages (scripts/deps.sh installs
# them). One interface target, drst_deps, carries them all to libdrst.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

set(DRST_PC_MODULES jansson rdkafka libpcap liburcu ck libmicrohttpd libcrypto
    libxxhash inih openblas)
pkg_check_modules(DRST_PC REQUIRED IMPORTED_TARGET ${DRST_PC_MODULES})
# libcurl: headers only. src/lib/store/s3.c loads libcurl.so.4 with dlopen()
# on first use (src/lib/common/lazylib_int.h says why).
pkg_check_modules(CURL REQUIRED libcurl)

# libxgboost ships no pkg-config file. Headers only: model_gbdt.c loads
# libxgboost.so.0 with dlopen() on first use (src/lib/common/lazylib_int.h).
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h REQUIRED)

add_library(drst_deps INTERFACE)
target_link_libraries(drst_deps INTERFACE PkgConfig::DRST_PC Threads::Threads m ${CMAKE_DL_LIBS})
target_include_directories(drst_deps INTERFACE ${XGBOOST_INCLUDE_DIR} ${CURL_INCLUDE_DIRS})

# Serial OpenBLAS, whatever the system's alternative says. Debian's default
# (pthread) build starts a thread pool when the library loads, and its
# threads spin for ~0.1 s of CPU in every drst process, even `drst flows`,
# which never calls BLAS; on 2 cores that spin takes the second core from
# our own workers. Our matrices are small (batch x 64), so BLAS threads do
# not shorten training (drst train --model mlp on combined.csv: 0.48 s wall
# either way) and the retrainer already uses both cores, one candidate per
# thread. Both builds have the SONAME libopenblas.so.0, so a run path is
# enough; the package is in scripts/deps.sh's build list.
find_path(OPENBLAS_SERIAL_DIR libopenblas.so.0
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-serial NO_DEFAULT_PATH)
if(OPENBLAS_SERIAL_DIR)
  target_link_options(drst_deps INTERFACE "LINKER:-rpath,${OPENBLAS_SERIAL_DIR}")
else()
  message(WARNING "serial OpenBLAS (libopenblas0-serial) not found: the default "
                  "pthread build spins a thread pool in every drst process")
endif()

# cmocka is in the build package list: the unit tests are built with the tool.
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
