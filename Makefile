# Convenience front end over CMake. Every target first makes sure the Debian
# packages it needs are installed (scripts/deps.sh, quick when nothing is missing).
#
#   make run          build (Release) and run the main job
#   make check        build and run the test suite (ctest)
#   make acceptance   only the headline figures on the real data (also in check)
#   make asan         the test suite under AddressSanitizer + UBSan
#   make fuzz         build the libFuzzer targets with clang and run each briefly
#   make bench        benchmarks against their named peers (prints figures)
#   make format       clang-format the sources; format-check only checks
#   make lint         cppcheck on the library and the tool

JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
FUZZ_SECONDS ?= 20
CTEST_ARGS  ?=
OUT         ?= out
DATA        ?= ../shared/data

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find include src tests bench -name '*.[ch]')

.PHONY: all build run check acceptance asan fuzz bench format format-check lint clean deps-build deps-test deps-bench

all: build

deps-build:
	@bash scripts/deps.sh build
deps-test:
	@bash scripts/deps.sh test
deps-bench:
	@bash scripts/deps.sh bench

$(BUILD)/Makefile: | deps-build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps-build $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# The main job: `drst run` (offline training, streaming inference over
# partitions, drift detection, retraining, hot swap, report) on DRST's data in
# $(DATA), or on a `drst simulate` drift scenario when it is absent.
run: build
	@mkdir -p $(OUT)
	bash scripts/main-job.sh $(BUILD)/drst $(DATA) $(OUT)

check: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The headline figures of the issues on real data (slow; see tests/CMakeLists.txt).
acceptance: deps-test build
	cd $(BUILD) && ctest --output-on-failure -L acceptance

asan: deps-test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDRST_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

fuzz: deps-test
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDRST_SANITIZE=ON -DDRST_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: deps-bench build
	cmake --build $(BUILD) --target bench

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run --Werror $(SOURCES)

lint: build
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --suppress=missingIncludeSystem --inline-suppr -I include -I src/lib src/lib src/tool

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(OUT)
