// server/listener.cpp — sockets, the gate thread, worker threads and the drain (see listener.h).
#include "server/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace hkv::server {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kLingerMs = 2000;               // after an error answer: discard input, then close
constexpr size_t kLingerMaxBytes = 16 << 20;  // ... at most this much of it
constexpr size_t kReadChunk = 64 * 1024;

// One client connection. Owned by exactly one place at a time: the gate's list, a work queue,
// a worker, or the list of connections returned to the gate.
struct Conn {
    int fd = -1;
    RequestFramer framer;
    std::string pending;       // bytes read past the end of the previous request (pipelining)
    std::string request;       // the canonical request handed to a worker
    Clock::time_point deadline;
    Clock::time_point since;   // entered the gate (the longest-waiting one is evicted first)
    bool lingering = false;    // an error answer was sent: read and discard until EOF, then close
    size_t discarded = 0;
    int32_t n_requests = 0;
    Conn(int f, const FramerLimits& lim) : fd(f), framer(lim) {}
};

// Whether the peer of fd is still there: no error, no hang-up, no end of its stream.
bool peer_alive(int fd) {
    pollfd pf{fd, short(POLLIN | POLLRDHUP), 0};
    if (::poll(&pf, 1, 0) < 0) return errno == EINTR;
    if (pf.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return false;
    if (pf.revents & POLLIN) {
        char c;
        return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0;  // 0: the peer closed
    }
    return true;
}

void address_of(const sockaddr_storage& a, std::string& ip, int& port) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (a.ss_family == AF_INET) {
        const auto* s = reinterpret_cast<const sockaddr_in*>(&a);
        ::inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
        port = ntohs(s->sin_port);
    } else if (a.ss_family == AF_INET6) {
        const auto* s = reinterpret_cast<const sockaddr_in6*>(&a);
        ::inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
        port = ntohs(s->sin6_port);
    }
    ip = buf;
}

// The stream a worker's handler sees: reads come from the buffered request (then EOF), writes go
// to the socket, each bounded by the write timeout and abandoned when the server cancels.
class ConnStream final : public httplib::Stream {
public:
    ConnStream(int fd, const std::string& req, int write_timeout_ms, const std::atomic<bool>& cancelled)
        : fd_(fd), req_(req), write_timeout_ms_(write_timeout_ms), cancelled_(cancelled) {}
    bool failed() const { return failed_; }

    bool is_readable() const override { return off_ < req_.size(); }
    bool is_writable() const override { return !failed_ && !cancelled_ && peer_alive(fd_); }
    ssize_t read(char* ptr, size_t size) override {
        const size_t n = std::min(size, req_.size() - off_);
        std::memcpy(ptr, req_.data() + off_, n);
        off_ += n;
        return ssize_t(n);
    }
    ssize_t write(const char* ptr, size_t size) override {
        const auto deadline = Clock::now() + milliseconds(write_timeout_ms_);
        size_t done = 0;
        while (done < size && !failed_) {
            if (cancelled_) break;
            const ssize_t k = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0) {
                done += size_t(k);
                continue;
            }
            if (k < 0 && errno == EINTR) continue;
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
                if (left <= 0) break;
                pollfd pf{fd_, POLLOUT, 0};
                ::poll(&pf, 1, int(std::min<int64_t>(left, 100)));  // wakes to notice a cancel
                continue;
            }
            break;
        }
        if (done < size) {
            failed_ = true;
            return -1;
        }
        return ssize_t(size);
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        sockaddr_storage a{};
        socklen_t n = sizeof a;
        if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &n) == 0) address_of(a, ip, port);
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        sockaddr_storage a{};
        socklen_t n = sizeof a;
        if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n) == 0) address_of(a, ip, port);
    }
    // NOTE: httplib (built without CPPHTTPLIB_USE_POLL) answers 500 to a stream whose socket() is
    // >= FD_SETSIZE, a select() limit; this stream never select()s, so it reports 0 instead.
    socket_t socket() const override { return fd_ < FD_SETSIZE ? fd_ : 0; }

private:
    int fd_;
    const std::string& req_;
    size_t off_ = 0;
    int write_timeout_ms_;
    const std::atomic<bool>& cancelled_;
    bool failed_ = false;
};

const char* reason(int status) {
    switch (status) {
        case 400: return "Bad Request";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Error";
    }
}

thread_local Conn* t_conn = nullptr;                       // the connection a worker is serving
thread_local const std::atomic<bool>* t_cancelled = nullptr;

}  // namespace

struct Listener::Impl {
    ListenerOptions opt;
    int listen_fd = -1;
    int wake_fd = -1;
    int port = 0;
    std::atomic<bool> stopping{false}, cancelled{false};

    std::mutex mu;  // guards everything below
    std::condition_variable heavy_cv, light_cv;  // one per queue: a probe wakes a light worker only
    std::deque<Conn*> heavy_q, light_q;
    std::vector<Conn*> returned;
    std::set<Conn*> active;
    bool workers_exit = false;
    Clock::time_point drain_deadline;

    std::atomic<int32_t> n_open{0};
    const Handler* handler = nullptr;
    const ErrorBody* error_body = nullptr;

    void wake() {
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(wake_fd, &one, sizeof one);
    }
    void close_conn(Conn* c) {
        ::close(c->fd);
        delete c;
        n_open.fetch_sub(1);
    }
    void respond_error(Conn* c, int status, const std::string& msg);
    // Feeds bytes to c's framer; true if c left the gate (dispatched or closed).
    bool consume(Conn* c, std::string_view data);
    void dispatch(Conn* c);
    void worker(bool light);
    void serve(Conn* c);
    void cancel_locked();
};

void Listener::Impl::respond_error(Conn* c, int status, const std::string& msg) {
    const std::string body = error_body && *error_body ? (*error_body)(status, msg) : msg;
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n";
    if (status == 503) r += "Retry-After: 1\r\n";
    r += "\r\n" + body;
    // Best effort (the socket buffer of a fresh connection holds it); then half-close and discard
    // what the client still sends, so that it reads the answer instead of a reset.
    [[maybe_unused]] ssize_t k = ::send(c->fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    c->deadline = Clock::now() + milliseconds(kLingerMs);
    c->framer.reset();
    c->pending.clear();
}

bool Listener::Impl::consume(Conn* c, std::string_view data) {
    const bool was_started = c->framer.started();
    const size_t used = c->framer.feed(data);
    if (c->framer.failed()) {
        respond_error(c, c->framer.error_status(), c->framer.error_message());
        return false;
    }
    if (c->framer.wants_continue()) {
        static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        [[maybe_unused]] ssize_t k = ::send(c->fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        c->framer.continue_sent();
    }
    if (c->framer.done()) {
        c->pending.assign(data.substr(used));
        c->request = c->framer.take_request();
        dispatch(c);
        return true;
    }
    if (!was_started && c->framer.started()) c->deadline = Clock::now() + milliseconds(opt.request_timeout_ms);
    return false;
}

void Listener::Impl::dispatch(Conn* c) {
    // A bodiless GET/HEAD/OPTIONS is quick: it goes to the light workers.
    const std::string_view req(c->request);
    const bool light = (req.rfind("GET ", 0) == 0 || req.rfind("HEAD ", 0) == 0 || req.rfind("OPTIONS ", 0) == 0) &&
                       req.size() >= 4 && req.compare(req.size() - 4, 4, "\r\n\r\n") == 0;
    {
        std::lock_guard<std::mutex> lk(mu);
        (light ? light_q : heavy_q).push_back(c);
    }
    (light ? light_cv : heavy_cv).notify_one();
}

void Listener::Impl::serve(Conn* c) {
    ConnStream strm(c->fd, c->request, opt.write_timeout_ms, cancelled);
    const bool close = stopping || ++c->n_requests >= opt.max_requests_per_connection;
    bool closed = false, ok = false;
    t_conn = c;
    t_cancelled = &cancelled;
    try {
        ok = (*handler)(strm, close, closed);
    } catch (...) {
        ok = false;
    }
    t_conn = nullptr;
    std::string().swap(c->request);
    const bool keep = ok && !closed && !close && !strm.failed() && !stopping;
    {
        std::lock_guard<std::mutex> lk(mu);
        active.erase(c);
        if (keep) returned.push_back(c);
    }
    if (!keep) close_conn(c);
    wake();
}

void Listener::Impl::worker(bool light) {
    pthread_setname_np(pthread_self(), light ? "hkv-light" : "hkv-worker");  // visible in top -H, gdb
    std::deque<Conn*>& q = light ? light_q : heavy_q;
    std::condition_variable& cv = light ? light_cv : heavy_cv;
    for (;;) {
        Conn* c = nullptr;
        {
            std::unique_lock<std::mutex> lk(mu);
            cv.wait(lk, [&] { return workers_exit || !q.empty(); });
            if (q.empty()) return;
            c = q.front();
            q.pop_front();
            active.insert(c);
        }
        serve(c);
    }
}

void Listener::Impl::cancel_locked() {
    cancelled = true;
    for (std::deque<Conn*>* q : {&heavy_q, &light_q}) {
        for (Conn* c : *q) close_conn(c);
        q->clear();
    }
    for (Conn* c : active) ::shutdown(c->fd, SHUT_RDWR);  // blocked writes fail at once
}

Listener::Listener() : impl_(new Impl()) {}

Listener::~Listener() {
    if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
    if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

Expected<std::unique_ptr<Listener>> Listener::open(const ListenerOptions& o) {
    if (o.backlog < 1) return Status::invalid("listen backlog %d < 1", o.backlog);
    if (o.n_workers < 1 || o.n_light_workers < 1) return Status::invalid("listener: at least one worker of each kind");
    std::unique_ptr<Listener> l(new Listener());
    Impl& I = *l->impl_;
    I.opt = o;
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        I.opt.max_connections = int32_t(std::min<rlim_t>(rlim_t(o.max_connections), std::max<rlim_t>(rl.rlim_cur, 96) - 64));
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    const std::string where = o.host + ":" + std::to_string(o.port);
    const int gai = ::getaddrinfo(o.host.empty() ? nullptr : o.host.c_str(), std::to_string(o.port).c_str(), &hints, &res);
    if (gai != 0) return Status::io_error("cannot listen on %s: %s", where.c_str(), ::gai_strerror(gai));
    int err = 0;
    for (addrinfo* ai = res; ai && I.listen_fd < 0; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        // SO_REUSEADDR only (restart while old connections linger in TIME_WAIT); never
        // SO_REUSEPORT, which lets a second server bind the same port and split the traffic.
        const int yes = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, o.backlog) != 0) {
            err = errno;
            ::close(fd);
            continue;
        }
        I.listen_fd = fd;
    }
    ::freeaddrinfo(res);
    if (I.listen_fd < 0) return Status::io_error("cannot listen on %s: %s", where.c_str(), std::strerror(err));
    sockaddr_storage a{};
    socklen_t n = sizeof a;
    std::string ip;
    if (::getsockname(I.listen_fd, reinterpret_cast<sockaddr*>(&a), &n) == 0) address_of(a, ip, I.port);
    I.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (I.wake_fd < 0) return Status::io_error("listener: eventfd: %s", std::strerror(errno));
    return l;
}

int Listener::port() const { return impl_->port; }
bool Listener::stopping() const { return impl_->stopping; }
bool Listener::cancelled() const { return impl_->cancelled; }

void Listener::stop() {
    Impl& I = *impl_;
    {
        std::lock_guard<std::mutex> lk(I.mu);
        const auto now = Clock::now();
        if (!I.stopping) {
            I.drain_deadline = now + milliseconds(I.opt.drain_timeout_ms);
            I.stopping = true;
        } else {
            I.drain_deadline = now;  // a second stop: cancel what is running
        }
    }
    I.wake();
}

bool Listener::connection_alive() {
    if (!t_conn) return true;
    return !(t_cancelled && *t_cancelled) && peer_alive(t_conn->fd);
}

Status Listener::run(const Handler& handler, const ErrorBody& error_body) {
    Impl& I = *impl_;
    I.handler = &handler;
    I.error_body = &error_body;
    std::vector<std::thread> threads;
    for (int i = 0; i < I.opt.n_workers; ++i) threads.emplace_back([&I] { I.worker(false); });
    for (int i = 0; i < I.opt.n_light_workers; ++i) threads.emplace_back([&I] { I.worker(true); });

    std::vector<Conn*> gate;  // connections between requests, owned here
    std::vector<pollfd> pfds;
    std::vector<char> buf(kReadChunk);
    Clock::time_point accept_paused_until;
    bool closed_gate = false;
    for (;;) {
        auto now = Clock::now();
        const bool stopping = I.stopping;
        if (stopping && !closed_gate) {  // stop accepting; connections between requests are closed
            ::close(I.listen_fd);
            I.listen_fd = -1;
            for (Conn* c : gate) I.close_conn(c);
            gate.clear();
            closed_gate = true;
        }
        std::vector<Conn*> back;
        {
            std::lock_guard<std::mutex> lk(I.mu);
            back.swap(I.returned);
            if (stopping) {
                if (I.active.empty() && I.heavy_q.empty() && I.light_q.empty() && back.empty()) break;
                if (!I.cancelled && now >= I.drain_deadline) I.cancel_locked();
            }
        }
        for (Conn* c : back) {  // a worker finished a request and the connection stays open
            if (stopping) {
                I.close_conn(c);
                continue;
            }
            c->since = now;
            c->deadline = now + milliseconds(I.opt.idle_timeout_ms);
            std::string pending;
            pending.swap(c->pending);
            if (pending.empty() || !I.consume(c, pending)) {
                if (!c->lingering && c->framer.started()) c->deadline = now + milliseconds(I.opt.request_timeout_ms);
                gate.push_back(c);
            }
        }
        // Deadlines: a partial request gets 408; an idle or lingering connection is closed.
        size_t buffered = 0;
        for (Conn*& c : gate) {
            if (now >= c->deadline) {
                if (c->lingering || !c->framer.started()) {
                    I.close_conn(c);
                    c = nullptr;
                    continue;
                }
                I.respond_error(c, 408, "the request did not arrive within " +
                                            std::to_string(I.opt.request_timeout_ms) + " ms");
            }
            buffered += c->framer.buffered_bytes();
        }
        gate.erase(std::remove(gate.begin(), gate.end(), nullptr), gate.end());

        pfds.clear();
        pfds.push_back({I.wake_fd, POLLIN, 0});
        const bool accepting = I.listen_fd >= 0 && now >= accept_paused_until;
        if (accepting) pfds.push_back({I.listen_fd, POLLIN, 0});
        const size_t first_conn = pfds.size();
        auto next = now + milliseconds(1000);
        for (Conn* c : gate) {
            // Over the buffer budget, a connection in its body is not read (flow control holds it).
            const bool hold = buffered > I.opt.max_buffered_bytes && c->framer.head_done() && !c->lingering;
            pfds.push_back({c->fd, short(hold ? 0 : POLLIN), 0});
            next = std::min(next, c->deadline);
        }
        if (stopping) next = std::min(next, I.drain_deadline);
        if (!accepting && I.listen_fd >= 0) next = std::min(next, accept_paused_until);
        const int timeout = int(std::max<int64_t>(0, std::chrono::duration_cast<milliseconds>(next - now).count() + 1));
        const int np = ::poll(pfds.data(), nfds_t(pfds.size()), timeout);
        if (np < 0 && errno != EINTR) return Status::io_error("listener: poll: %s", std::strerror(errno));
        if (np <= 0) continue;
        now = Clock::now();
        if (pfds[0].revents) {
            uint64_t v;
            [[maybe_unused]] ssize_t r = ::read(I.wake_fd, &v, sizeof v);
        }
        // Connections first (their indices refer to `gate` as it was when pfds was built).
        for (size_t k = first_conn; k < pfds.size(); ++k) {
            Conn*& c = gate[k - first_conn];
            if (!pfds[k].revents) continue;
            const ssize_t n = ::recv(c->fd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            if (n <= 0) {  // closed by the client (or reset): nothing to answer
                I.close_conn(c);
                c = nullptr;
                continue;
            }
            if (c->lingering) {
                c->discarded += size_t(n);
                if (c->discarded > kLingerMaxBytes) {
                    I.close_conn(c);
                    c = nullptr;
                }
                continue;
            }
            if (I.consume(c, std::string_view(buf.data(), size_t(n)))) c = nullptr;
        }
        gate.erase(std::remove(gate.begin(), gate.end(), nullptr), gate.end());
        if (accepting && pfds[1].revents) {
            for (;;) {
                const int fd = ::accept4(I.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno == EINTR || errno == ECONNABORTED) continue;
                    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        accept_paused_until = now + milliseconds(100);
                    }
                    break;
                }
                const int yes = 1;  // small SSE events and split header/body writes go out at once
                ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
                if (I.opt.send_buffer_bytes > 0) {
                    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &I.opt.send_buffer_bytes, sizeof I.opt.send_buffer_bytes);
                }
                if (I.n_open >= I.opt.max_connections) {
                    // Full: drop a connection that was answered with an error, else the one that
                    // has waited longest without a complete request.
                    auto victim = std::find_if(gate.begin(), gate.end(), [](Conn* g) { return g->lingering; });
                    if (victim == gate.end()) {
                        victim = std::min_element(gate.begin(), gate.end(),
                                                  [](Conn* a, Conn* b) { return a->since < b->since; });
                    }
                    if (victim == gate.end()) {
                        ::close(fd);
                        continue;
                    }
                    I.close_conn(*victim);
                    gate.erase(victim);
                }
                I.n_open.fetch_add(1);
                Conn* c = new Conn(fd, I.opt.limits);
                c->since = now;
                c->deadline = now + milliseconds(I.opt.request_timeout_ms);
                gate.push_back(c);
            }
        }
    }
    {
        std::lock_guard<std::mutex> lk(I.mu);
        I.workers_exit = true;
    }
    I.heavy_cv.notify_all();
    I.light_cv.notify_all();
    for (std::thread& t : threads) t.join();
    for (Conn* c : gate) I.close_conn(c);
    if (I.listen_fd >= 0) {
        ::close(I.listen_fd);
        I.listen_fd = -1;
    }
    return Status();
}

}  // namespace hkv::server
