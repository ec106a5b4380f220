#include "daemon/dedup/factory.h"

#include "daemon/dedup/lmdb_store.h"
#include "daemon/dedup/memory_store.h"
#include "daemon/dedup/redis_store.h"

namespace kpipe::dedup {

std::variant<std::unique_ptr<Store>, std::string> makeStore(const config::StoreSpec& spec,
                                                            observe::Metrics* metrics) {
  const Ttls ttls{spec.ttl, spec.reservation_ttl};
  switch (spec.type) {
    case config::StoreType::Memory:
      return std::make_unique<MemoryStore>(spec.name, spec.max_entries, ttls);
    case config::StoreType::Redis:
      return makeRedisStore(spec, metrics);
    case config::StoreType::Lmdb:
      return makeLmdbStore(spec, metrics);
  }
  return "unknown store type";
}

}  // namespace kpipe::dedup
