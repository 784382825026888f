/*
 * veth-netlink: plugs veth pairs between a container's network namespace and the host's by
 * speaking rtnetlink directly (no `ip` process per step). Used by berth-userns's net-*
 * commands; see veth-netlink.c.
 */
#ifndef BERTH_VETH_NETLINK_H
#define BERTH_VETH_NETLINK_H

/* One interface of a container, as given on the command line (six arguments). */
struct veth_spec {
  const char *if_name;   /* inside the container: eth0, eth1, ... */
  const char *host_name; /* the host end, unique per Berth instance */
  const char *bridge;    /* the host bridge the host end is put on */
  const char *mac;       /* aa:bb:cc:dd:ee:ff */
  const char *address;   /* 172.18.0.2/16 or fd00::2/64 */
  const char *gateway;   /* default route through it, or NULL */
};

#define VETH_SPEC_ARGS 6

/*
 * Parses argc/VETH_SPEC_ARGS groups of arguments into `specs` (at most `max`); "-" as gateway
 * means none. Returns the count, or -1 (with a message on stderr) on a malformed list.
 */
int veth_parse_specs(int argc, char **argv, struct veth_spec *specs, int max);

/*
 * Opens a route netlink socket in the calling thread's current network namespace (a netlink
 * socket stays bound to the namespace it was opened in). Call once before leaving the host's
 * namespace and once inside the container's. Returns the socket or -1 with errno set.
 */
int veth_rtnl_open(void);

/*
 * With `host` a socket and `host_ns` an fd of the host's network namespace, and the calling
 * thread inside the container's namespace with socket `inner`: brings lo up when `lo_up`,
 * then for each spec creates the pair (container end with its MAC in here, host end in
 * host_ns) and both ends with the bridge's MTU, addresses the container end, brings it up,
 * adds its default route, and puts the host end on its bridge and up. On any failure the
 * pairs made so far are deleted (no veth is left behind) and -1 is returned after a message
 * on stderr naming the step.
 */
int veth_plug_all(int host, int host_ns, int inner, int lo_up, const struct veth_spec *specs, int count);

/*
 * Deletes the links named in `names` from the socket's namespace (for a veth, the pair). A
 * link that does not exist is no error; every name is tried even after a failure. Returns 0,
 * or -1 after a message on stderr for each link that could not be deleted.
 */
int veth_delete_links(int fd, int count, char **names);

#endif
