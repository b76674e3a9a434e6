/* nodelay_shim: a diagnosis tool of the serving benchmark (bench/compare_serve.py --focus-nodelay),
 * not part of focus. Preloaded into a server (LD_PRELOAD), it sets TCP_NODELAY on every socket
 * accept() / accept4() returns, to show what a server that leaves Nagle's algorithm on (cpp-httplib's
 * default, CPPHTTPLIB_TCP_NODELAY false) would do with it off: on a keep-alive connection a response
 * written in two pieces waits for the client's delayed ACK (~40 ms on Linux) before its second piece.
 * Build: cc -O2 -shared -fPIC -o nodelay_shim.so bench/nodelay_shim.c -ldl
 * Limits: Linux / glibc (dlsym RTLD_NEXT); only sockets from accept() and accept4(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int nodelay(int fd) {
  int one = 1;
  if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int accept(int s, struct sockaddr* addr, socklen_t* len) {
  static int (*real)(int, struct sockaddr*, socklen_t*);
  if (!real) real = (int (*)(int, struct sockaddr*, socklen_t*))dlsym(RTLD_NEXT, "accept");
  return nodelay(real(s, addr, len));
}

int accept4(int s, struct sockaddr* addr, socklen_t* len, int flags) {
  static int (*real)(int, struct sockaddr*, socklen_t*, int);
  if (!real) real = (int (*)(int, struct sockaddr*, socklen_t*, int))dlsym(RTLD_NEXT, "accept4");
  return nodelay(real(s, addr, len, flags));
}
