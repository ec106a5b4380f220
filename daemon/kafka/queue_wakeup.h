#pragma once
// Bridges a librdkafka queue to Asio without polling: librdkafka writes a byte to a pipe when
// the queue becomes non-empty (rd_kafka_queue_io_event_enable), Asio waits on the pipe and
// calls `on_ready` on the io_context thread.
//
// librdkafka writes only one wake-up per "non-polling period": after on_ready the owner must
// serve the queue (consume/poll) until it is empty, or call notify() to be called again.
//
// Lifecycle: construct with the queue (not owned; must outlive this), start(), and destroy
// before the queue. Not thread-safe: use from the io_context thread.

#include "daemon/kafka/handle.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <functional>
#include <memory>

namespace kpipe::kafka {

class QueueWakeup {
 public:
  QueueWakeup(boost::asio::io_context& io, rd_kafka_queue_t* queue, std::function<void()> on_ready);
  ~QueueWakeup();
  QueueWakeup(const QueueWakeup&) = delete;
  QueueWakeup& operator=(const QueueWakeup&) = delete;

  void start();
  // Schedules on_ready once more (the owner stopped serving before the queue was empty).
  void notify();
  void stop();

 private:
  void wait();
  rd_kafka_queue_t* queue_;
  std::function<void()> on_ready_;
  boost::asio::posix::stream_descriptor reader_;
  int write_fd_ = -1;
  bool stopped_ = false;
  bool notify_pending_ = false;
  // Handlers still queued in the io_context when this is destroyed see the token expired.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace kpipe::kafka
