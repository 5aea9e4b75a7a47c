/* Network helpers; see net.h. */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
wq_free_tcp_port(uint32_t addr)
{
    /* close-on-exec: the worker forks job ranks, which must not inherit even this socket */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(addr);
    socklen_t len = sizeof a;
    int port = 0;
    if (bind(fd, (struct sockaddr *) &a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *) &a, &len) == 0)
        port = ntohs(a.sin_port);
    int saved = errno;
    close(fd);
    errno = saved;
    return port;
}
