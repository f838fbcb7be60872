/* A listening TCP socket on 127.0.0.1 at a free port, for unit tests that play an HTTP server. */
#ifndef HSC_TEST_LOOPBACK_H
#define HSC_TEST_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* Returns a socket listening on 127.0.0.1 (the kernel picks the port, put in *port), or -1. */
static inline int loopback_listen(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &al) || listen(fd, backlog)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

#endif
