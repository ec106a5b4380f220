#pragma once
// Helpers shared by the libFuzzer targets of tests/fuzz: the source tree, a scratch directory
// made once per process, splitting an input into parts.

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe::fuzz {

// The repository (config/, schemas/): $KPIPE_SOURCE_DIR, else the one the target was built from.
inline std::filesystem::path sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  return dir != nullptr && *dir != '\0' ? dir : KPIPE_SOURCE_DIR_DEFAULT;
}

// A directory under $TMPDIR made on first use and removed at exit (libFuzzer exits through
// exit(); after a crash it stays, which helps reproducing).
inline const std::filesystem::path& scratchDir() {
  // Never destroyed: the atexit handler runs after the destructors of statics built later.
  static const std::filesystem::path* const dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "kpipe-fuzz-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("kpipe fuzz: mkdtemp");
      std::abort();
    }
    auto* made = new std::filesystem::path(pattern);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    });
    return made;
  }();
  return *dir;
}

// Replaces the content of `file`. Aborts when it cannot: the target would test nothing.
inline void writeFile(const std::filesystem::path& file, std::string_view text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "kpipe fuzz: cannot write %s\n", file.c_str());
    std::abort();
  }
}

// Copies the demo schemas (schemas/ of the repository) to `dir`/schemas, so that fuzzed schemas
// and configs can refer to them as the demo config does.
inline void copyDemoSchemas(const std::filesystem::path& dir) {
  std::filesystem::copy(
      sourceDir() / "schemas", dir / "schemas",
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
}

// Up to `n` parts of `input` separated by NUL bytes; the last part keeps any further NULs.
inline std::vector<std::string_view> splitAtNul(std::string_view input, size_t n) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < n) {
    const size_t nul = input.find('\0');
    if (nul == std::string_view::npos) break;
    parts.push_back(input.substr(0, nul));
    input.remove_prefix(nul + 1);
  }
  parts.push_back(input);
  return parts;
}

// A broken invariant: crash so that libFuzzer keeps the input.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "kpipe fuzz: invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace kpipe::fuzz
