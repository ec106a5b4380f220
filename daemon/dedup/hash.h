#pragma once
// A 128-bit hash of an id, for stores that keep a fingerprint (memory) or shorten a key
// (lmdb) instead of keeping the id. MurmurHash3_x64_128 (Austin Appleby, public domain): well
// studied, fast on short keys, and its 128 output bits behave as independent random bits for
// non-adversarial input, which is what the collision odds quoted by its users assume.
// Not a cryptographic hash: ids are chosen by producers we trust not to forge collisions.

#include <cstdint>
#include <cstring>
#include <string_view>

namespace kpipe::dedup {

struct Hash128 {
  uint64_t high = 0;
  uint64_t low = 0;
};

namespace detail {
inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}
}  // namespace detail

inline Hash128 hash128(std::string_view data, uint64_t seed = 0) {
  using detail::rotl;
  constexpr uint64_t c1 = 0x87c37b91114253d5ULL;
  constexpr uint64_t c2 = 0x4cf5ad432745937fULL;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t len = data.size();
  uint64_t h1 = seed;
  uint64_t h2 = seed;
  const size_t blocks = len / 16;
  for (size_t i = 0; i < blocks; ++i) {
    uint64_t k1;
    uint64_t k2;
    std::memcpy(&k1, bytes + i * 16, 8);  // little-endian hosts only, like the reference
    std::memcpy(&k2, bytes + i * 16 + 8, 8);
    k1 *= c1;
    k1 = rotl(k1, 31);
    k1 *= c2;
    h1 ^= k1;
    h1 = rotl(h1, 27);
    h1 += h2;
    h1 = h1 * 5 + 0x52dce729;
    k2 *= c2;
    k2 = rotl(k2, 33);
    k2 *= c1;
    h2 ^= k2;
    h2 = rotl(h2, 31);
    h2 += h1;
    h2 = h2 * 5 + 0x38495ab5;
  }
  const unsigned char* tail = bytes + blocks * 16;
  uint64_t k1 = 0;
  uint64_t k2 = 0;
  const size_t rest = len & 15;
  for (size_t i = rest; i > 8; --i) k2 ^= static_cast<uint64_t>(tail[i - 1]) << ((i - 9) * 8);
  if (rest > 8) {
    k2 *= c2;
    k2 = rotl(k2, 33);
    k2 *= c1;
    h2 ^= k2;
  }
  for (size_t i = rest < 8 ? rest : 8; i > 0; --i) {
    k1 ^= static_cast<uint64_t>(tail[i - 1]) << ((i - 1) * 8);
  }
  if (rest > 0) {
    k1 *= c1;
    k1 = rotl(k1, 31);
    k1 *= c2;
    h1 ^= k1;
  }
  h1 ^= len;
  h2 ^= len;
  h1 += h2;
  h2 += h1;
  h1 = detail::fmix(h1);
  h2 = detail::fmix(h2);
  h1 += h2;
  h2 += h1;
  return {h1, h2};
}

}  // namespace kpipe::dedup
