#include "daemon/kafka/queue_wakeup.h"

#include <boost/asio/post.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <stdexcept>
#include <system_error>

namespace kpipe::kafka {

QueueWakeup::QueueWakeup(boost::asio::io_context& io, rd_kafka_queue_t* queue,
                         std::function<void()> on_ready)
    : queue_(queue), on_ready_(std::move(on_ready)), reader_(io) {
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  reader_.assign(fds[0]);
  write_fd_ = fds[1];
}

QueueWakeup::~QueueWakeup() {
  stop();
  if (write_fd_ >= 0) close(write_fd_);
}

void QueueWakeup::start() {
  static const char kByte = 'k';
  rd_kafka_queue_io_event_enable(queue_, write_fd_, &kByte, 1);
  wait();
  // Anything queued before the event was enabled wrote nothing: look once now.
  notify();
}

void QueueWakeup::notify() {
  if (notify_pending_ || stopped_) return;
  notify_pending_ = true;
  boost::asio::post(reader_.get_executor(), [this, alive = std::weak_ptr<char>(alive_)] {
    if (alive.expired()) return;
    notify_pending_ = false;
    if (!stopped_) on_ready_();
  });
}

void QueueWakeup::stop() {
  if (stopped_) return;
  stopped_ = true;
  rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
  boost::system::error_code ec;
  reader_.cancel(ec);
}

void QueueWakeup::wait() {
  reader_.async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || stopped_) return;
        std::array<char, 256> drain{};
        while (::read(reader_.native_handle(), drain.data(), drain.size()) > 0) {
        }
        on_ready_();
        if (!alive.expired() && !stopped_) wait();
      });
}

}  // namespace kpipe::kafka
