#include <stdio.h>
#ifdef _WIN32
static int open_port(const char *name) { return 0; }
#else
static int open_port(const char *name) { return 1; }
#endif
#if defined(HAVE_EPOLL)
struct poller { int fd; };
int poller_wait(struct poller *p) { return p->fd; }
#elif defined(HAVE_KQUEUE)
int kqueue_wait(int fd) { return fd; }
#endif
#define DEFINE_GETTER(name) int get_##name(void) { return 0; }
DEFINE_GETTER(width)
#ifdef __cplusplus
extern "C" {
#endif
int exported_api(int x);
int exported_impl(int x) { return x; }
#ifdef __cplusplus
}
#endif
