// SPDX-License-Identifier: MIT
// TLS client contexts and streams over OpenSSL 3 (tls.hpp).
#include "tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "../error.hpp"
#include "../fork.hpp"

namespace httpcache::detail {

namespace {

// What our BIO reads and writes: the socket, and the error of its last failed call.
struct socket_link {
  net::socket_t s;
  int err = 0;
};

int bio_write(BIO* b, const char* data, int len) {
  auto* link = static_cast<socket_link*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  const long n = net::send_some(link->s, data, static_cast<std::size_t>(len), &link->err);
  if (n == net::would_block) BIO_set_retry_write(b);
  return n >= 0 ? static_cast<int>(n) : -1;
}

int bio_read(BIO* b, char* data, int len) {
  auto* link = static_cast<socket_link*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  const long n = net::recv_some(link->s, data, static_cast<std::size_t>(len), &link->err);
  if (n == net::would_block) BIO_set_retry_read(b);
  return n >= 0 ? static_cast<int>(n) : -1;
}

long bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* socket_bio_method() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "httpcache socket");
    if (!m) throw std::bad_alloc();
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

// The first queued OpenSSL error, or `fallback`; clears the queue.
std::string openssl_reason(const char* fallback) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  if (ERR_SYSTEM_ERROR(e)) return net::error_text(static_cast<int>(ERR_GET_REASON(e)));  // e.g. no such file
  const char* reason = ERR_reason_error_string(e);
  return reason ? reason : fmt::format("OpenSSL error {:#x}", e);
}

[[noreturn]] void bad_setting(const std::string& what, const std::string& file) {
  throw error(errc::invalid, fmt::format("cannot use {} '{}': {}", what, file, openssl_reason("unreadable")));
}

// Where distributions keep their CA bundle. OpenSSL looks only where its own build says (Debian's:
// /usr/lib/ssl); the Python wheels carry Debian's OpenSSL to hosts that keep it elsewhere.
constexpr const char* known_ca_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                 // Debian, Ubuntu, Arch, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",                   // Fedora, RHEL, Amazon Linux
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // RHEL, CentOS
    "/etc/ssl/ca-bundle.pem",                             // openSUSE
    "/etc/ssl/cert.pem",                                  // Alpine, the BSDs
};

// The system's CA certificates: OpenSSL's defaults (SSL_CERT_FILE and SSL_CERT_DIR when set),
// or, where neither default location exists on this host, the first bundle it does have.
void load_system_roots(SSL_CTX* ctx) {
  if (SSL_CTX_set_default_verify_paths(ctx) != 1)
    throw error(errc::invalid, "cannot load the system's CA certificates: " + openssl_reason("unknown"));
  if (std::getenv(X509_get_default_cert_file_env()) || std::getenv(X509_get_default_cert_dir_env())) return;
  std::error_code ec;
  if (std::filesystem::exists(X509_get_default_cert_file(), ec) ||
      std::filesystem::is_directory(X509_get_default_cert_dir(), ec))
    return;
  for (const char* bundle : known_ca_bundles) {
    if (!std::filesystem::is_regular_file(bundle, ec)) continue;
    if (SSL_CTX_load_verify_locations(ctx, bundle, nullptr) != 1)
      throw error(errc::invalid, fmt::format("cannot load the system's CA certificates from '{}': {}", bundle,
                                             openssl_reason("unreadable")));
    return;
  }
}

}  // namespace

tls_client::tls_client(const tls_settings& settings) : settings_(settings) {
  fork_fence fence;
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ctx_) throw std::bad_alloc();
  try {
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // One recv per arrival instead of two per record (header, then body): what was read ahead
    // stays inside, and tls_stream::has_buffered() makes the transport read it before waiting.
    SSL_CTX_set_read_ahead(ctx_, 1);
    const bool custom = !settings.ca_certs.empty() || !settings.ca_path.empty();
    // OpenSSL reads a CA directory lazily, per lookup: a missing one would only show later, as
    // a misleading "self-signed certificate". It must exist now.
    std::error_code ec;
    if (!settings.ca_path.empty() && !std::filesystem::is_directory(settings.ca_path, ec))
      throw error(errc::invalid, fmt::format("cannot use ssl_ca_path '{}': not a directory", settings.ca_path));
    if (custom) {
      if (SSL_CTX_load_verify_locations(ctx_, settings.ca_certs.empty() ? nullptr : settings.ca_certs.c_str(),
                                        settings.ca_path.empty() ? nullptr : settings.ca_path.c_str()) != 1)
        bad_setting(settings.ca_certs.empty() ? "ssl_ca_path" : "ssl_ca_certs",
                    settings.ca_certs.empty() ? settings.ca_path : settings.ca_certs);
    } else {
      load_system_roots(ctx_);
    }
    SSL_CTX_set_verify(ctx_, settings.verify() ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (settings.server_hostname.size() > 253)  // what SNI and DNS allow
      throw error(errc::invalid, "ssl_server_hostname is longer than 253 bytes");
    if (settings.certfile.empty() != settings.keyfile.empty())
      throw error(errc::invalid, "ssl_certfile and ssl_keyfile go together: give both or neither");
    if (!settings.certfile.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, settings.certfile.c_str()) != 1)
        bad_setting("ssl_certfile", settings.certfile);
      if (SSL_CTX_use_PrivateKey_file(ctx_, settings.keyfile.c_str(), SSL_FILETYPE_PEM) != 1)
        bad_setting("ssl_keyfile", settings.keyfile);
      if (SSL_CTX_check_private_key(ctx_) != 1) bad_setting("ssl_keyfile (it does not match ssl_certfile)", settings.keyfile);
    }
  } catch (...) {
    SSL_CTX_free(ctx_);
    throw;
  }
}

tls_client::~tls_client() {
  fork_fence fence;
  SSL_CTX_free(ctx_);
}

std::unique_ptr<tls_stream> tls_client::open(net::socket_t s, const std::string& host) const {
  fork_fence fence;
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) throw std::bad_alloc();
  std::unique_ptr<tls_stream> stream(new tls_stream(ssl));
  BIO* bio = BIO_new(socket_bio_method());
  if (!bio) throw std::bad_alloc();
  BIO_set_data(bio, new socket_link{s});
  SSL_set_bio(ssl, bio, bio);  // one reference, owned by ssl from here
  const std::string& name = settings_.server_hostname.empty() ? host : settings_.server_hostname;
  // An IP address is checked against the certificate's IP entries and is never sent as SNI.
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
  const bool is_ip = ip != nullptr;
  ASN1_OCTET_STRING_free(ip);
  ERR_clear_error();
  if (settings_.check_hostname_enabled() &&
      (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) : SSL_set1_host(ssl, name.c_str())) != 1)
    throw error(errc::invalid, "bad TLS server name: " + name);
  if (!is_ip && SSL_set_tlsext_host_name(ssl, const_cast<char*>(name.c_str())) != 1)
    throw error(errc::invalid, "bad TLS server name: " + name);
  return stream;
}

tls_stream::~tls_stream() {
  fork_fence fence;
  BIO* bio = SSL_get_rbio(ssl_);
  delete static_cast<socket_link*>(bio ? BIO_get_data(bio) : nullptr);
  SSL_free(ssl_);  // no SSL_shutdown: nothing is written on teardown (fork safety)
}

tls_io tls_stream::result(int rc, const char* what, bool handshaking) {
  tls_io io;
  if (rc > 0) {
    io.bytes = rc;
    return io;
  }
  const int code = SSL_get_error(ssl_, rc);
  switch (code) {
    case SSL_ERROR_WANT_READ:
      io.wants = net::want_read;
      return io;
    case SSL_ERROR_WANT_WRITE:
      io.wants = net::want_write;
      return io;
    case SSL_ERROR_ZERO_RETURN:
      return io;  // close_notify: the peer closed
    default:
      break;
  }
  io.failed = true;
  const long verify = SSL_get_verify_result(ssl_);
  const bool verifying = (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0;
  if (handshaking && verifying && verify != X509_V_OK) {
    ERR_clear_error();
    io.error = fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verify));
    return io;
  }
  const auto* link = static_cast<const socket_link*>(BIO_get_data(SSL_get_rbio(ssl_)));
  if (code == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    if (link->err != 0) io.error = fmt::format("{}: {}", what, net::error_text(link->err));
    else io.bytes = 0, io.failed = false;  // EOF without close_notify: the peer closed
    return io;
  }
  io.error = fmt::format("{}: {}", what, openssl_reason("TLS error"));
  return io;
}

tls_io tls_stream::handshake() {
  fork_fence fence;
  ERR_clear_error();
  tls_io io = result(SSL_connect(ssl_), "TLS handshake failed", true);
  if (!io.failed && io.wants == 0 && io.bytes == 0) {
    io.failed = true;  // closed in the middle of the handshake
    io.error = "TLS handshake failed: the server closed the connection";
  }
  return io;
}

tls_io tls_stream::write(const char* data, std::size_t len) {
  fork_fence fence;
  ERR_clear_error();
  const int n = len > 1u << 30 ? 1 << 30 : static_cast<int>(len);
  return result(SSL_write(ssl_, data, n), "TLS write failed", false);
}

tls_io tls_stream::read(char* data, std::size_t len) {
  fork_fence fence;
  ERR_clear_error();
  const int n = len > 1u << 30 ? 1 << 30 : static_cast<int>(len);
  return result(SSL_read(ssl_, data, n), "TLS read failed", false);
}

bool tls_stream::has_buffered() const {
  fork_fence fence;
  return SSL_has_pending(ssl_) == 1;
}

}  // namespace httpcache::detail
