# The house warning set (docs/CONTRIBUTING.md). -Werror is on by default and
# always in CI; -DDRST_WERROR=OFF exists for newer compilers with new warnings.
function(drst_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wformat=2 -Wno-format-nonliteral -Wvla -Wpointer-arith -Wundef)
  if(DRST_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
