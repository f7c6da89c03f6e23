// SPDX-License-Identifier: MIT
// Internal to core/redis/: TLS for the transport, over OpenSSL 3. A tls_client is made once per
// backend from the URL's and options' settings (the trust store, the client certificate, what to
// verify) and makes one tls_stream per connection. Verification is on by default: the chain is
// checked against the CAs, and the certificate must name the host (a DNS name or an IP address),
// TLS 1.2 at least.
//
// The stream does its socket I/O through our own BIO over socket.hpp (send without SIGPIPE, the
// same calls a Winsock build provides), and never writes on teardown: freeing a stream sends no
// close_notify, so a forked child can drop its parent's connection without touching it.
#pragma once

#include <memory>
#include <string>

#include "../url.hpp"
#include "socket.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace httpcache::detail {

class tls_stream;

class tls_client {
 public:
  // Loads the CA file/path (the system's default store when neither is given) and the client
  // certificate and key. Throws error(errc::invalid) naming the file that could not be used.
  explicit tls_client(const tls_settings& settings);
  ~tls_client();
  tls_client(const tls_client&) = delete;
  tls_client& operator=(const tls_client&) = delete;

  // A stream for a connection to `host` (the name checked against the certificate and sent as
  // SNI, unless the settings name another) on socket s, which stays the caller's.
  std::unique_ptr<tls_stream> open(net::socket_t s, const std::string& host) const;

 private:
  SSL_CTX* ctx_ = nullptr;
  tls_settings settings_;
};

// The results of a stream operation: bytes moved, or what it waits for, or a failure.
struct tls_io {
  long bytes = 0;        // > 0 moved; 0 with neither flag below: the peer closed
  unsigned wants = 0;    // net::want_read / net::want_write: try again when ready
  bool failed = false;   // `error` says why
  std::string error;
};

class tls_stream {
 public:
  ~tls_stream();
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  // One handshake step: done (bytes 1), waiting (wants), or failed with the reason, e.g.
  // "certificate verify failed: hostname mismatch".
  tls_io handshake();
  tls_io write(const char* data, std::size_t len);
  tls_io read(char* data, std::size_t len);
  bool has_buffered() const;  // decrypted bytes wait inside: read again before waiting

 private:
  friend class tls_client;
  explicit tls_stream(SSL* ssl) : ssl_(ssl) {}
  tls_io result(int rc, const char* what, bool handshaking);
  SSL* ssl_;
};

}  // namespace httpcache::detail
