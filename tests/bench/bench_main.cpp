// main() of every benchmark in tests/bench/: BENCHMARK_MAIN's, plus how kpipe was compiled in
// the context lines (libbenchmark's own "built as DEBUG" warning is about Debian's build of the
// library, not about this code).
#include <benchmark/benchmark.h>

int main(int argc, char** argv) {
#if defined(__OPTIMIZE__) && defined(NDEBUG)
  benchmark::AddCustomContext("kpipe_build", "optimized, NDEBUG (CMake RelWithDebInfo or Release)");
#else
  benchmark::AddCustomContext("kpipe_build",
                              "NOT optimized or with asserts (Debug): not representative");
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
