/* Network helpers shared by the programs and their tests. */
#ifndef WSLQ_NET_H
#define WSLQ_NET_H

#include <netinet/in.h>
#include <stdint.h>

/* A TCP port the kernel says is free right now on IPv4 address 'addr' (host byte order:
 * INADDR_ANY for every interface of this node, INADDR_LOOPBACK for 127.0.0.1): bind port 0,
 * read back the ephemeral port chosen, close. Free now only: another program may take it
 * before the caller binds it. Returns the port (1..65535), or 0 with errno set if none. */
int wq_free_tcp_port(uint32_t addr);

#endif
