/*
 * veth-netlink: the rtnetlink requests behind attaching a container to its networks, the
 * same ones `ip link add ... type veth peer ... netns`, `ip addr add`, `ip link set up`,
 * `ip route replace default` and `ip link set master` send, made from this process so an
 * attach costs one process start instead of one `ip` (plus unshare/nsenter) per side.
 *
 * Requests are sent one at a time with NLM_F_ACK and their answer read before the next: the
 * steps depend on each other (an address needs its link, a route its address) and each
 * failure is reported with the step and the kernel's extended ack message when it has one.
 */
#define _GNU_SOURCE
#include "veth-netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

struct request {
  union {
    struct nlmsghdr header;
    char bytes[1024];
  } u;
};

static unsigned int next_seq = 1;

static struct nlmsghdr *request_start(struct request *r, int type, int flags, const void *body, size_t body_len) {
  memset(r, 0, sizeof *r);
  struct nlmsghdr *n = &r->u.header;
  n->nlmsg_len = NLMSG_LENGTH(body_len);
  n->nlmsg_type = (unsigned short)type;
  n->nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
  n->nlmsg_seq = next_seq++;
  memcpy(NLMSG_DATA(n), body, body_len);
  return n;
}

/* Appends an attribute; the requests here are small and fixed, so overflow is a bug: abort. */
static struct rtattr *attr_put(struct nlmsghdr *n, int type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(n->nlmsg_len);
  if (at + RTA_SPACE(len) > sizeof(struct request)) abort();
  struct rtattr *a = (struct rtattr *)((char *)n + at);
  a->rta_type = (unsigned short)type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len > 0) memcpy(RTA_DATA(a), data, len);
  n->nlmsg_len = (unsigned int)(at + RTA_ALIGN(a->rta_len));
  return a;
}

static void attr_str(struct nlmsghdr *n, int type, const char *s) { attr_put(n, type, s, strlen(s) + 1); }
static void attr_u32(struct nlmsghdr *n, int type, uint32_t v) { attr_put(n, type, &v, sizeof v); }
static struct rtattr *nest_start(struct nlmsghdr *n, int type) { return attr_put(n, type, NULL, 0); }
static void nest_end(struct nlmsghdr *n, struct rtattr *nest) { nest->rta_len = (unsigned short)((char *)n + n->nlmsg_len - (char *)nest); }

int veth_rtnl_open(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  int one = 1;
  /* Best effort: the kernel's reason for a refusal (e.g. "Invalid prefix for given prefix length"). */
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

/* The extended ack's message, if the kernel attached one after the echoed request. */
static const char *ext_ack_message(struct nlmsghdr *answer, struct nlmsgerr *err) {
  if (!(answer->nlmsg_flags & NLM_F_ACK_TLVS)) return NULL;
  size_t echoed = (answer->nlmsg_flags & NLM_F_CAPPED) ? sizeof(struct nlmsghdr) : err->msg.nlmsg_len;
  size_t offset = NLMSG_ALIGN(sizeof(struct nlmsgerr) - sizeof(struct nlmsghdr) + echoed);
  if (NLMSG_LENGTH(offset) > answer->nlmsg_len) return NULL;
  int left = (int)(answer->nlmsg_len - NLMSG_LENGTH(offset));
  for (struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(answer) + offset); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
    if (a->rta_type == NLMSGERR_ATTR_MSG) return (const char *)RTA_DATA(a);
  }
  return NULL;
}

/*
 * Sends the request and waits for its ack. Returns 0, or -1 after printing
 * "berth-userns: STEP: reason" on stderr.
 */
/* What a RTM_GETLINK answer tells: the link's index and MTU. */
struct link_facts {
  unsigned int index;
  unsigned int mtu;
};

static int talk_tolerating(int fd, struct nlmsghdr *n, const char *step, struct link_facts *link_out, int tolerated) {
  if (send(fd, n, n->nlmsg_len, 0) < 0) {
    fprintf(stderr, "berth-userns: %s: send: %s\n", step, strerror(errno));
    return -1;
  }
  char buf[8192] __attribute__((aligned(4)));
  for (;;) {
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "berth-userns: %s: recv: %s\n", step, strerror(errno));
      return -1;
    }
    int left = (int)got;
    for (struct nlmsghdr *answer = (struct nlmsghdr *)buf; NLMSG_OK(answer, (unsigned int)left); answer = NLMSG_NEXT(answer, left)) {
      if (answer->nlmsg_seq != n->nlmsg_seq) continue;
      if (answer->nlmsg_type == RTM_NEWLINK && link_out != NULL) {
        struct ifinfomsg *ifi = (struct ifinfomsg *)NLMSG_DATA(answer);
        link_out->index = (unsigned int)ifi->ifi_index;
        int attrs_len = (int)IFLA_PAYLOAD(answer);
        for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, attrs_len); a = RTA_NEXT(a, attrs_len)) {
          if (a->rta_type == IFLA_MTU && RTA_PAYLOAD(a) >= sizeof(uint32_t)) memcpy(&link_out->mtu, RTA_DATA(a), sizeof(uint32_t));
        }
        continue;
      }
      if (answer->nlmsg_type != NLMSG_ERROR) continue;
      struct nlmsgerr *err = (struct nlmsgerr *)NLMSG_DATA(answer);
      if (err->error == 0 || (tolerated != 0 && -err->error == tolerated)) return 0;
      const char *why = ext_ack_message(answer, err);
      fprintf(stderr, "berth-userns: %s: %s%s%s\n", step, strerror(-err->error), why ? ": " : "", why ? why : "");
      return -1;
    }
  }
}

static int talk(int fd, struct nlmsghdr *n, const char *step) { return talk_tolerating(fd, n, step, NULL, 0); }

/* Index and MTU of the link named `name` in the socket's namespace; index 0 after a message. */
static struct link_facts link_lookup(int fd, const char *name, const char *step) {
  struct request r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  struct nlmsghdr *n = request_start(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
  attr_str(n, IFLA_IFNAME, name);
  /* Only index and MTU are wanted: skip the statistics. */
  attr_u32(n, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  struct link_facts facts = {0, 0};
  if (talk_tolerating(fd, n, step, &facts, 0) < 0) return (struct link_facts){0, 0};
  if (facts.index == 0) fprintf(stderr, "berth-userns: %s: no such link\n", step);
  return facts;
}

/* Sets IFF_UP (and, with master > 0, the master) on the link named `name`. */
static int link_up(int fd, const char *name, unsigned int master, const char *step) {
  struct request r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
  struct nlmsghdr *n = request_start(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
  attr_str(n, IFLA_IFNAME, name);
  if (master > 0) attr_u32(n, IFLA_MASTER, master);
  return talk(fd, n, step);
}

static int link_delete(int fd, const char *name) {
  struct request r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  struct nlmsghdr *n = request_start(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
  attr_str(n, IFLA_IFNAME, name);
  return talk(fd, n, "delete veth");
}

/*
 * Creates the pair: `spec->if_name` with its MAC here, its peer `spec->host_name` in host_ns,
 * both ends with `mtu` (the bridge's: on an overlay network it is below the underlay's, and a
 * container sending larger frames would have them dropped in the tunnel).
 */
static int veth_create(int inner, int host_ns, const struct veth_spec *spec, const unsigned char mac[6], unsigned int mtu) {
  struct request r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  struct nlmsghdr *n = request_start(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
  attr_str(n, IFLA_IFNAME, spec->if_name);
  attr_put(n, IFLA_ADDRESS, mac, 6);
  if (mtu > 0) attr_u32(n, IFLA_MTU, mtu);
  struct rtattr *linkinfo = nest_start(n, IFLA_LINKINFO);
  attr_str(n, IFLA_INFO_KIND, "veth");
  struct rtattr *data = nest_start(n, IFLA_INFO_DATA);
  struct rtattr *peer = nest_start(n, VETH_INFO_PEER);
  /* The peer's attributes follow an ifinfomsg of its own. */
  struct ifinfomsg peer_ifi = {.ifi_family = AF_UNSPEC};
  size_t at = NLMSG_ALIGN(n->nlmsg_len);
  memcpy((char *)n + at, &peer_ifi, sizeof peer_ifi);
  n->nlmsg_len = (unsigned int)(at + NLMSG_ALIGN(sizeof peer_ifi));
  attr_str(n, IFLA_IFNAME, spec->host_name);
  attr_u32(n, IFLA_NET_NS_FD, (uint32_t)host_ns);
  if (mtu > 0) attr_u32(n, IFLA_MTU, mtu);
  nest_end(n, peer);
  nest_end(n, data);
  nest_end(n, linkinfo);
  char step[64];
  snprintf(step, sizeof step, "create veth %s/%s", spec->if_name, spec->host_name);
  return talk(inner, n, step);
}

struct prefix {
  int family;
  unsigned char bytes[16];
  size_t len;
  unsigned char prefix_len;
};

static int parse_ip(const char *text, struct prefix *out) {
  if (inet_pton(AF_INET, text, out->bytes) == 1) {
    out->family = AF_INET;
    out->len = 4;
    return 0;
  }
  if (inet_pton(AF_INET6, text, out->bytes) == 1) {
    out->family = AF_INET6;
    out->len = 16;
    return 0;
  }
  return -1;
}

/* "ADDRESS/LEN" */
static int parse_prefix(const char *text, struct prefix *out) {
  const char *slash = strchr(text, '/');
  char ip[INET6_ADDRSTRLEN];
  if (slash == NULL || (size_t)(slash - text) >= sizeof ip) return -1;
  memcpy(ip, text, (size_t)(slash - text));
  ip[slash - text] = '\0';
  if (parse_ip(ip, out) < 0) return -1;
  char *end;
  unsigned long len = strtoul(slash + 1, &end, 10);
  if (*end != '\0' || end == slash + 1 || len > out->len * 8) return -1;
  out->prefix_len = (unsigned char)len;
  return 0;
}

static int parse_mac(const char *text, unsigned char mac[6]) {
  unsigned int b[6];
  char tail;
  if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) return -1;
  for (int i = 0; i < 6; i++) mac[i] = (unsigned char)b[i];
  return 0;
}

static int address_add(int fd, unsigned int index, const struct prefix *p, const char *step) {
  struct request r;
  struct ifaddrmsg ifa = {.ifa_family = (unsigned char)p->family, .ifa_prefixlen = p->prefix_len, .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = index};
  struct nlmsghdr *n = request_start(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
  attr_put(n, IFA_LOCAL, p->bytes, p->len);
  attr_put(n, IFA_ADDRESS, p->bytes, p->len);
  return talk(fd, n, step);
}

static int default_route(int fd, unsigned int index, const struct prefix *gateway, const char *step) {
  struct request r;
  struct rtmsg rtm = {
      .rtm_family = (unsigned char)gateway->family,
      .rtm_table = RT_TABLE_MAIN,
      .rtm_protocol = RTPROT_BOOT,
      .rtm_scope = RT_SCOPE_UNIVERSE,
      .rtm_type = RTN_UNICAST,
  };
  struct nlmsghdr *n = request_start(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rtm, sizeof rtm);
  attr_put(n, RTA_GATEWAY, gateway->bytes, gateway->len);
  attr_u32(n, RTA_OIF, index);
  return talk(fd, n, step);
}

int veth_parse_specs(int argc, char **argv, struct veth_spec *specs, int max) {
  if (argc % VETH_SPEC_ARGS != 0 || argc / VETH_SPEC_ARGS > max) {
    fprintf(stderr, "berth-userns: expected groups of %d veth arguments (at most %d groups), got %d arguments\n", VETH_SPEC_ARGS, max, argc);
    return -1;
  }
  int count = argc / VETH_SPEC_ARGS;
  for (int i = 0; i < count; i++) {
    char **a = argv + i * VETH_SPEC_ARGS;
    for (int j = 0; j < 3; j++) {
      if (strlen(a[j]) == 0 || strlen(a[j]) >= IFNAMSIZ) {
        fprintf(stderr, "berth-userns: bad interface name: '%s'\n", a[j]);
        return -1;
      }
    }
    specs[i] = (struct veth_spec){a[0], a[1], a[2], a[3], a[4], strcmp(a[5], "-") == 0 ? NULL : a[5]};
    unsigned char mac[6];
    struct prefix address, gateway;
    if (parse_mac(specs[i].mac, mac) < 0 || parse_prefix(specs[i].address, &address) < 0 ||
        (specs[i].gateway && (parse_ip(specs[i].gateway, &gateway) < 0 || gateway.family != address.family))) {
      fprintf(stderr, "berth-userns: bad veth %s: mac '%s', address '%s', gateway '%s'\n", a[0], a[3], a[4], a[5]);
      return -1;
    }
  }
  return count;
}

/* One pair, after veth_parse_specs checked its arguments. On failure the pair may exist. */
static int plug_one(int host, int host_ns, int inner, const struct veth_spec *s, int *created) {
  unsigned char mac[6];
  struct prefix address, gateway;
  parse_mac(s->mac, mac);
  parse_prefix(s->address, &address);
  if (s->gateway) parse_ip(s->gateway, &gateway);
  char step[96];
  snprintf(step, sizeof step, "bridge %s", s->bridge);
  struct link_facts bridge = link_lookup(host, s->bridge, step);
  if (bridge.index == 0) return -1;
  if (veth_create(inner, host_ns, s, mac, bridge.mtu) < 0) return -1;
  *created = 1;
  snprintf(step, sizeof step, "veth %s", s->if_name);
  unsigned int index = link_lookup(inner, s->if_name, step).index;
  if (index == 0) return -1;
  snprintf(step, sizeof step, "add address %s to %s", s->address, s->if_name);
  if (address_add(inner, index, &address, step) < 0) return -1;
  snprintf(step, sizeof step, "set %s up", s->if_name);
  if (link_up(inner, s->if_name, 0, step) < 0) return -1;
  snprintf(step, sizeof step, "default route via %s", s->gateway ? s->gateway : "-");
  if (s->gateway && default_route(inner, index, &gateway, step) < 0) return -1;
  snprintf(step, sizeof step, "put %s on %s", s->host_name, s->bridge);
  return link_up(host, s->host_name, bridge.index, step);
}

int veth_plug_all(int host, int host_ns, int inner, int lo_up, const struct veth_spec *specs, int count) {
  if (lo_up && link_up(inner, "lo", 0, "set lo up") < 0) return -1;
  int made = 0;
  for (int i = 0; i < count; i++) {
    int created = 0;
    int ok = plug_one(host, host_ns, inner, &specs[i], &created);
    made += created;
    if (ok < 0) {
      /* Deleting the host end deletes the pair; a name that was taken (EEXIST) is not ours. */
      for (int j = 0; j < made; j++) (void)link_delete(host, specs[j].host_name);
      return -1;
    }
  }
  return 0;
}

int veth_delete_links(int fd, int count, char **names) {
  int failed = 0;
  for (int i = 0; i < count; i++) {
    struct request r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct nlmsghdr *n = request_start(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
    attr_str(n, IFLA_IFNAME, names[i]);
    char step[96];
    snprintf(step, sizeof step, "delete link %s", names[i]);
    /* Gone already (its namespace went first, or a reconcile raced us) is what was asked. */
    if (talk_tolerating(fd, n, step, NULL, ENODEV) < 0) failed = 1;
  }
  return failed ? -1 : 0;
}
