// libssh2 and the few OpenSSL functions the core calls, for the runwarden
// executable, loaded on the first call.
//
// runwarden is the runner of every run and the CLI; only plans with SSH
// targets, `runwarden exec` and testbeds (guests' host keys) use them.
// Linked, libssh2 and libcrypto (OpenSSL's, several MB with thousands of
// relocations) were loaded and relocated at every start: a quarter of the
// time runwarden takes to start, on the path of every start-run (the runner
// starts with it) and of every `runwarden status`. So runwarden is linked
// with this file instead: each function the core calls is defined here and
// forwards to libssh2.so.1 or libcrypto.so.3, dlopen'ed on the first call
// and kept (libssh2 keeps global state from libssh2_init).
//
// The definitions are checked against the libraries' own declarations (the
// headers are included: a signature that differs does not compile). A
// function used for the first time by the core needs its line here, or
// runwarden does not link. If a library cannot be loaded, each function
// fails as the library does (an error code, null; OPENSSL_cleanse still
// clears), and rw::ssh::libssh2_load_error() / libcrypto_load_error() say
// why (these replace the core's weak definitions, which say nothing).
// Thread-safe: each library is loaded once, each symbol looked up once.

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include <string>

#include "common/lazy_library.h"
#include "ssh/load_error.h"

namespace {

const rw::LazyLibrary& libssh2() {
  static const rw::LazyLibrary l = rw::open_lazy_library("libssh2.so.1", "libssh2-1");
  return l;
}

const rw::LazyLibrary& libcrypto() {
  static const rw::LazyLibrary l = rw::open_lazy_library("libcrypto.so.3", "libssl3");
  return l;
}

}  // namespace

namespace rw::ssh {

std::string libssh2_load_error() { return libssh2().why; }
std::string libcrypto_load_error() { return libcrypto().why; }

}  // namespace rw::ssh

#define RW_LAZY(ret, name, params, args, fail) RW_LAZY_IN(libssh2, ret, name, params, args, fail)
#define RW_LAZY_VOID(name, params, args) RW_LAZY_VOID_IN(libssh2, name, params, args)

// libssh2 (libssh2.h, libssh2_sftp.h). Without the library: error codes,
// null handles; a channel reads as at its end, a session as not
// authenticated.
RW_LAZY(int, libssh2_agent_connect, (LIBSSH2_AGENT *agent), (agent), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_agent_disconnect, (LIBSSH2_AGENT *agent), (agent), LIBSSH2_ERROR_ALLOC)
RW_LAZY_VOID(libssh2_agent_free, (LIBSSH2_AGENT *agent), (agent))
RW_LAZY(int, libssh2_agent_get_identity, (LIBSSH2_AGENT *agent, struct libssh2_agent_publickey **store, struct libssh2_agent_publickey *prev), (agent, store, prev), LIBSSH2_ERROR_ALLOC)
RW_LAZY(LIBSSH2_AGENT *, libssh2_agent_init, (LIBSSH2_SESSION *session), (session), nullptr)
RW_LAZY(int, libssh2_agent_list_identities, (LIBSSH2_AGENT *agent), (agent), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_agent_userauth, (LIBSSH2_AGENT *agent, const char *username, struct libssh2_agent_publickey *identity), (agent, username, identity), LIBSSH2_ERROR_ALLOC)
RW_LAZY(LIBSSH2_CHANNEL *, libssh2_channel_direct_tcpip_ex, (LIBSSH2_SESSION *session, const char *host, int port, const char *shost, int sport), (session, host, port, shost, sport), nullptr)
RW_LAZY(int, libssh2_channel_eof, (LIBSSH2_CHANNEL *channel), (channel), 1)
RW_LAZY(int, libssh2_channel_free, (LIBSSH2_CHANNEL *channel), (channel), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_channel_get_exit_signal, (LIBSSH2_CHANNEL* channel, char **exitsignal, size_t *exitsignal_len, char **errmsg, size_t *errmsg_len, char **langtag, size_t *langtag_len), (channel, exitsignal, exitsignal_len, errmsg, errmsg_len, langtag, langtag_len), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_channel_get_exit_status, (LIBSSH2_CHANNEL* channel), (channel), LIBSSH2_ERROR_ALLOC)
RW_LAZY(LIBSSH2_CHANNEL *, libssh2_channel_open_ex, (LIBSSH2_SESSION *session, const char *channel_type, unsigned int channel_type_len, unsigned int window_size, unsigned int packet_size, const char *message, unsigned int message_len), (session, channel_type, channel_type_len, window_size, packet_size, message, message_len), nullptr)
RW_LAZY(int, libssh2_channel_process_startup, (LIBSSH2_CHANNEL *channel, const char *request, unsigned int request_len, const char *message, unsigned int message_len), (channel, request, request_len, message, message_len), LIBSSH2_ERROR_ALLOC)
RW_LAZY(ssize_t, libssh2_channel_read_ex, (LIBSSH2_CHANNEL *channel, int stream_id, char *buf, size_t buflen), (channel, stream_id, buf, buflen), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_channel_send_eof, (LIBSSH2_CHANNEL *channel), (channel), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_channel_wait_closed, (LIBSSH2_CHANNEL *channel), (channel), LIBSSH2_ERROR_ALLOC)
RW_LAZY(ssize_t, libssh2_channel_write_ex, (LIBSSH2_CHANNEL *channel, int stream_id, const char *buf, size_t buflen), (channel, stream_id, buf, buflen), LIBSSH2_ERROR_ALLOC)
RW_LAZY_VOID(libssh2_free, (LIBSSH2_SESSION *session, void *ptr), (session, ptr))
RW_LAZY(const char *, libssh2_hostkey_hash, (LIBSSH2_SESSION *session, int hash_type), (session, hash_type), nullptr)
RW_LAZY(int, libssh2_init, (int flags), (flags), LIBSSH2_ERROR_ALLOC)
RW_LAZY_VOID(libssh2_keepalive_config, (LIBSSH2_SESSION *session, int want_reply, unsigned interval), (session, want_reply, interval))
RW_LAZY(int, libssh2_keepalive_send, (LIBSSH2_SESSION *session, int *seconds_to_next), (session, seconds_to_next), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_knownhost_check, (LIBSSH2_KNOWNHOSTS *hosts, const char *host, const char *key, size_t keylen, int typemask, struct libssh2_knownhost **knownhost), (hosts, host, key, keylen, typemask, knownhost), LIBSSH2_ERROR_ALLOC)
RW_LAZY_VOID(libssh2_knownhost_free, (LIBSSH2_KNOWNHOSTS *hosts), (hosts))
RW_LAZY(LIBSSH2_KNOWNHOSTS *, libssh2_knownhost_init, (LIBSSH2_SESSION *session), (session), nullptr)
RW_LAZY(int, libssh2_knownhost_readline, (LIBSSH2_KNOWNHOSTS *hosts, const char *line, size_t len, int type), (hosts, line, len, type), LIBSSH2_ERROR_ALLOC)
RW_LAZY(void *, libssh2_session_callback_set, (LIBSSH2_SESSION *session, int cbtype, void *callback), (session, cbtype, callback), nullptr)
RW_LAZY(int, libssh2_session_disconnect_ex, (LIBSSH2_SESSION *session, int reason, const char *description, const char *lang), (session, reason, description, lang), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_session_free, (LIBSSH2_SESSION *session), (session), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_session_handshake, (LIBSSH2_SESSION *session, libssh2_socket_t sock), (session, sock), LIBSSH2_ERROR_ALLOC)
RW_LAZY(const char *, libssh2_session_hostkey, (LIBSSH2_SESSION *session, size_t *len, int *type), (session, len, type), nullptr)
RW_LAZY(LIBSSH2_SESSION *, libssh2_session_init_ex, (LIBSSH2_ALLOC_FUNC((*my_alloc)), LIBSSH2_FREE_FUNC((*my_free)), LIBSSH2_REALLOC_FUNC((*my_realloc)), void *abstract), (my_alloc, my_free, my_realloc, abstract), nullptr)
RW_LAZY(int, libssh2_session_last_errno, (LIBSSH2_SESSION *session), (session), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_session_last_error, (LIBSSH2_SESSION *session, char **errmsg, int *errmsg_len, int want_buf), (session, errmsg, errmsg_len, want_buf), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_session_method_pref, (LIBSSH2_SESSION *session, int method_type, const char *prefs), (session, method_type, prefs), LIBSSH2_ERROR_ALLOC)
RW_LAZY_VOID(libssh2_session_set_blocking, (LIBSSH2_SESSION* session, int blocking), (session, blocking))
RW_LAZY(int, libssh2_session_supported_algs, (LIBSSH2_SESSION* session, int method_type, const char ***algs), (session, method_type, algs), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_sftp_close_handle, (LIBSSH2_SFTP_HANDLE *handle), (handle), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_sftp_fstat_ex, (LIBSSH2_SFTP_HANDLE *handle, LIBSSH2_SFTP_ATTRIBUTES *attrs, int setstat), (handle, attrs, setstat), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_sftp_fsync, (LIBSSH2_SFTP_HANDLE *handle), (handle), LIBSSH2_ERROR_ALLOC)
RW_LAZY(LIBSSH2_SFTP *, libssh2_sftp_init, (LIBSSH2_SESSION *session), (session), nullptr)
RW_LAZY(unsigned long, libssh2_sftp_last_error, (LIBSSH2_SFTP *sftp), (sftp), 0)
RW_LAZY(int, libssh2_sftp_mkdir_ex, (LIBSSH2_SFTP *sftp, const char *path, unsigned int path_len, long mode), (sftp, path, path_len, mode), LIBSSH2_ERROR_ALLOC)
RW_LAZY(LIBSSH2_SFTP_HANDLE *, libssh2_sftp_open_ex, (LIBSSH2_SFTP *sftp, const char *filename, unsigned int filename_len, unsigned long flags, long mode, int open_type), (sftp, filename, filename_len, flags, mode, open_type), nullptr)
RW_LAZY(ssize_t, libssh2_sftp_read, (LIBSSH2_SFTP_HANDLE *handle, char *buffer, size_t buffer_maxlen), (handle, buffer, buffer_maxlen), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_sftp_rename_ex, (LIBSSH2_SFTP *sftp, const char *source_filename, unsigned int srouce_filename_len, const char *dest_filename, unsigned int dest_filename_len, long flags), (sftp, source_filename, srouce_filename_len, dest_filename, dest_filename_len, flags), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_sftp_shutdown, (LIBSSH2_SFTP *sftp), (sftp), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_sftp_stat_ex, (LIBSSH2_SFTP *sftp, const char *path, unsigned int path_len, int stat_type, LIBSSH2_SFTP_ATTRIBUTES *attrs), (sftp, path, path_len, stat_type, attrs), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_sftp_unlink_ex, (LIBSSH2_SFTP *sftp, const char *filename, unsigned int filename_len), (sftp, filename, filename_len), LIBSSH2_ERROR_ALLOC)
RW_LAZY(ssize_t, libssh2_sftp_write, (LIBSSH2_SFTP_HANDLE *handle, const char *buffer, size_t count), (handle, buffer, count), LIBSSH2_ERROR_ALLOC)
RW_LAZY(int, libssh2_userauth_authenticated, (LIBSSH2_SESSION *session), (session), 0)
RW_LAZY(char *, libssh2_userauth_list, (LIBSSH2_SESSION *session, const char *username, unsigned int username_len), (session, username, username_len), nullptr)
RW_LAZY(int, libssh2_userauth_publickey_fromfile_ex, (LIBSSH2_SESSION *session, const char *username, unsigned int username_len, const char *publickey, const char *privatekey, const char *passphrase), (session, username, username_len, publickey, privatekey, passphrase), LIBSSH2_ERROR_ALLOC)

// OpenSSL (testbed host keys). Without the library: 0 (OpenSSL's failure)
// or null, and memory to clear is cleared all the same.
RW_LAZY_IN(libcrypto, EVP_PKEY_CTX*, EVP_PKEY_CTX_new_from_name,
           (OSSL_LIB_CTX * libctx, const char* name, const char* propquery), (libctx, name, propquery), nullptr)
RW_LAZY_IN(libcrypto, int, EVP_PKEY_keygen_init, (EVP_PKEY_CTX * ctx), (ctx), 0)
RW_LAZY_IN(libcrypto, int, EVP_PKEY_generate, (EVP_PKEY_CTX * ctx, EVP_PKEY** ppkey), (ctx, ppkey), 0)
RW_LAZY_VOID_IN(libcrypto, EVP_PKEY_CTX_free, (EVP_PKEY_CTX * ctx), (ctx))
RW_LAZY_VOID_IN(libcrypto, EVP_PKEY_free, (EVP_PKEY * pkey), (pkey))
RW_LAZY_IN(libcrypto, int, EVP_PKEY_get_raw_private_key, (const EVP_PKEY* pkey, unsigned char* priv, size_t* len),
           (pkey, priv, len), 0)
RW_LAZY_IN(libcrypto, int, EVP_PKEY_get_raw_public_key, (const EVP_PKEY* pkey, unsigned char* pub, size_t* len),
           (pkey, pub, len), 0)
RW_LAZY_IN(libcrypto, int, RAND_bytes, (unsigned char* buf, int num), (buf, num), 0)
extern "C" void OPENSSL_cleanse(void* ptr, size_t len) {
  static const auto f = rw::lazy_symbol<void (*)(void*, size_t)>(libcrypto(), "OPENSSL_cleanse");
  if (f) f(ptr, len);
  else ::explicit_bzero(ptr, len);
}
