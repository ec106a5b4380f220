#include "daemon/kafka/handle.h"

#include "daemon/observe/log.h"

namespace kpipe::kafka {

std::variant<ConfPtr, std::string> makeConf(std::initializer_list<const Properties*> properties) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const Properties* map : properties) {
    for (const auto& [name, value] : *map) {
      if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        return "kafka property " + name + ": " + errstr;
      }
    }
  }
  return conf;
}

std::variant<KafkaPtr, std::string> makeClient(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  // rd_kafka_new() owns the conf once it succeeds; on failure it is still ours.
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) return std::string("cannot create Kafka client: ") + errstr;
  conf.release();
  return KafkaPtr(rk);
}

namespace {
void logLine(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
  config::LogLevel ours = level <= 3   ? config::LogLevel::Error
                          : level == 4 ? config::LogLevel::Warn
                          : level <= 6 ? config::LogLevel::Info
                                       : config::LogLevel::Debug;
  observe::log::write(
      ours, text,
      {{"component", "librdkafka"}, {"client", rd_kafka_name(rk)}, {"facility", facility}});
}
}  // namespace

void setLogger(rd_kafka_conf_t* conf, const std::string& client_name) {
  rd_kafka_conf_set_log_cb(conf, logLine);
  char errstr[256];
  rd_kafka_conf_set(conf, "client.id", client_name.c_str(), errstr, sizeof errstr);
}

}  // namespace kpipe::kafka
