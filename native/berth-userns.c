/*
 * berth-userns: the few namespace syscalls Berth needs that Node cannot make and that
 * util-linux 2.38 / runc 1.1.5 on Debian 12 do not offer without newuidmap.
 *
 *   berth-userns overlay BASE COUNT LAYER_ROOT TARGET OPTIONS
 *       Mounts overlayfs at TARGET whose lower dirs are seen through an idmapped clone of the
 *       directory LAYER_ROOT: an owner id N on disk (0 <= N < COUNT) shows as BASE+N, others
 *       as the overflow id (nobody). OPTIONS is overlayfs' option string; relative lower dir
 *       names are resolved inside that clone (it is this process's working directory while
 *       mounting), absolute ones (upperdir, workdir) as usual. The clone is never attached
 *       anywhere: the overlay holds it, and it goes when the overlay is unmounted. So shared
 *       layers stay stored once, with the ids the image gives them.
 *       open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP) + fchdir + mount.
 *
 *   berth-userns run BASE COUNT CMD [ARGS...]
 *       Runs CMD as root of a new user namespace of that range (host mount namespace still):
 *       it sees owners as a container of the range does (host BASE+N is N), so a tool like
 *       tar reads and writes a tenant's files with the ids the image gives them. Exits with
 *       CMD's status.
 *
 *   berth-userns net-new NETNS_FILE [VETH...]
 *   berth-userns net-new-userns BASE COUNT USERNS_FILE NETNS_FILE [VETH...]
 *   berth-userns net-plug NETNS_FILE VETH...
 *       Attach a container to its networks in this one process (rtnetlink, veth-netlink.c):
 *       net-new makes a network namespace and pins it on the file (made if missing);
 *       net-new-userns makes it owned by a new user namespace of the range (0..COUNT-1
 *       mapped to BASE..), both pinned on their files;
 *       both bring lo up. net-plug enters a pinned namespace (network connect of a running
 *       container). Each VETH is six arguments: IFNAME HOST_END BRIDGE MAC ADDRESS/LEN
 *       GATEWAY|-; the pair is made, addressed, routed, and its host end put on the bridge.
 *       On failure no pair of this call is left; the namespace files are the caller's.
 *
 *   berth-userns net-del LINK...
 *       Deletes host links by name (a veth's host end takes its pair); missing ones are no
 *       error (container stop, network disconnect).
 *
 *   berth-userns serve
 *       Runs net-* commands read from stdin, one a line, without a process start each (see
 *       cmd_serve).
 *
 * The user namespace is created the same way everywhere: a child unshares it and waits while this
 * (host root) process writes its uid_map/gid_map, then the namespace is used through
 * /proc/CHILD/ns/user and the child exits (for run: becomes CMD). Exit status 1 with a
 * message on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mount.h>

#include "veth-netlink.h"

static void die(const char *what) {
  fprintf(stderr, "berth-userns: %s: %s\n", what, strerror(errno));
  exit(1);
}

static unsigned long parse_id(const char *text, const char *name) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(text, &end, 10);
  if (errno != 0 || *end != '\0' || end == text || v > 4294967294UL) {
    fprintf(stderr, "berth-userns: bad %s: %s\n", name, text);
    exit(2);
  }
  return v;
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(path);
  close(fd);
}

/*
 * Forks a child that unshares `flags` (CLONE_NEWUSER and maybe more) and then blocks on a pipe
 * until this process closes it; then it execs `exec_argv` (root of the range from there on)
 * or exits. Writes the child's id maps. Returns the child's pid; the caller opens
 * /proc/PID/ns/... if it needs to and then calls release_child.
 */
static int ready_pipe[2], hold_pipe[2];

static pid_t spawn_userns_child(int flags, unsigned long base, unsigned long count, char **exec_argv) {
  if (pipe2(ready_pipe, O_CLOEXEC) < 0 || pipe2(hold_pipe, O_CLOEXEC) < 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    char c = 0;
    close(ready_pipe[0]);
    close(hold_pipe[1]);
    if (unshare(flags) < 0) die("unshare");
    if (write(ready_pipe[1], &c, 1) != 1) _exit(1);
    /* Returns at EOF, when the parent is done with our namespaces. */
    (void)read(hold_pipe[0], &c, 1);
    if (exec_argv == NULL) _exit(0);
    /*
     * Become the namespace's root (host BASE): we are still host root, which the namespace
     * does not map, and execve would drop our capabilities. This fails, and CMD never runs,
     * when the parent died before writing the maps (EOF came early).
     */
    if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("become the range's root");
    execvp(exec_argv[0], exec_argv);
    die(exec_argv[0]);
  }
  close(ready_pipe[1]);
  close(hold_pipe[0]);
  char c;
  if (read(ready_pipe[0], &c, 1) != 1) {
    fprintf(stderr, "berth-userns: the namespace child failed\n");
    exit(1);
  }
  char path[64], map[96];
  snprintf(map, sizeof map, "0 %lu %lu\n", base, count);
  snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
  write_file(path, map);
  /* setgroups stays allowed: container init calls setgroups for its additional groups. */
  snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
  write_file(path, map);
  return pid;
}

/* Lets the child go on (exit, or exec its command) and returns its wait status. */
static int release_child(pid_t pid) {
  int status = 0;
  close(hold_pipe[1]);
  if (waitpid(pid, &status, 0) < 0) die("waitpid");
  return status;
}

static int open_ns(pid_t pid, const char *kind) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, kind);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  return fd;
}

static int cmd_overlay(unsigned long base, unsigned long count, const char *layer_root, const char *target, const char *options) {
  pid_t child = spawn_userns_child(CLONE_NEWUSER, base, count, NULL);
  int userns = open_ns(child, "user");
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, layer_root, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) die("open_tree");
  struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned long long)userns};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) die("mount_setattr");
  release_child(child);
  if (fchdir(tree) < 0) die("fchdir");
  if (mount("overlay", target, "overlay", 0, options) < 0) die("mount overlay");
  return 0;
}

#define MAX_VETHS 64

/*
 * Plugs the VETH arguments into the namespace this process is in now; `host` and `host_ns`
 * were opened in the host's namespace before leaving it.
 */
static int plug_here(int host, int host_ns, int lo_up, int argc, char **argv) {
  struct veth_spec specs[MAX_VETHS];
  int count = veth_parse_specs(argc, argv, specs, MAX_VETHS);
  if (count < 0) return 2;
  int inner = veth_rtnl_open();
  if (inner < 0) die("netlink socket in the container's namespace");
  return veth_plug_all(host, host_ns, inner, lo_up, specs, count) < 0 ? 1 : 0;
}

/* Creates an empty file (mode 0600) to pin a namespace on, if there is none. */
static void ensure_pin_file(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) die(path);
  close(fd);
}

/* A netlink socket and a namespace fd of the host's network namespace, before leaving it. */
static void open_host(int *host, int *host_ns) {
  *host = veth_rtnl_open();
  if (*host < 0) die("netlink socket");
  *host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*host_ns < 0) die("/proc/self/ns/net");
}

static int cmd_net_new(const char *netns_file, int argc, char **argv) {
  int host, host_ns;
  open_host(&host, &host_ns);
  ensure_pin_file(netns_file);
  if (unshare(CLONE_NEWNET) < 0) die("unshare network namespace");
  if (mount("/proc/self/ns/net", netns_file, NULL, MS_BIND, NULL) < 0) die("pin network namespace");
  return plug_here(host, host_ns, 1, argc, argv);
}

static int cmd_net_new_userns(unsigned long base, unsigned long count, const char *userns_file, const char *netns_file, int argc, char **argv) {
  int host, host_ns;
  open_host(&host, &host_ns);
  ensure_pin_file(userns_file);
  ensure_pin_file(netns_file);
  pid_t child = spawn_userns_child(CLONE_NEWUSER | CLONE_NEWNET, base, count, NULL);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", child);
  if (mount(path, userns_file, NULL, MS_BIND, NULL) < 0) die("pin user namespace");
  snprintf(path, sizeof path, "/proc/%d/ns/net", child);
  if (mount(path, netns_file, NULL, MS_BIND, NULL) < 0) die("pin network namespace");
  int netns = open_ns(child, "net");
  release_child(child);
  /* Host root in the new network namespace: it can still make links in the host's. */
  if (setns(netns, CLONE_NEWNET) < 0) die("setns");
  return plug_here(host, host_ns, 1, argc, argv);
}

static int cmd_net_plug(const char *netns_file, int argc, char **argv) {
  int host, host_ns;
  open_host(&host, &host_ns);
  int netns = open(netns_file, O_RDONLY | O_CLOEXEC);
  if (netns < 0) die(netns_file);
  if (setns(netns, CLONE_NEWNET) < 0) die("setns");
  return plug_here(host, host_ns, 0, argc, argv);
}

/* Deletes host links (veth host ends, bridges) by name in Berth's own network namespace. */
static int cmd_net_del(int argc, char **argv) {
  int host = veth_rtnl_open();
  if (host < 0) die("netlink socket");
  return veth_delete_links(host, argc, argv) < 0 ? 1 : 0;
}

static int cmd_run(unsigned long base, unsigned long count, char **argv) {
  pid_t child = spawn_userns_child(CLONE_NEWUSER, base, count, argv);
  int status = release_child(child);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int dispatch(int argc, char **argv) {
  if (argc == 7 && strcmp(argv[1], "overlay") == 0) {
    return cmd_overlay(parse_id(argv[2], "base"), parse_id(argv[3], "count"), argv[4], argv[5], argv[6]);
  }
  if (argc >= 3 && strcmp(argv[1], "net-new") == 0) {
    return cmd_net_new(argv[2], argc - 3, argv + 3);
  }
  if (argc >= 6 && strcmp(argv[1], "net-new-userns") == 0) {
    return cmd_net_new_userns(parse_id(argv[2], "base"), parse_id(argv[3], "count"), argv[4], argv[5], argc - 6, argv + 6);
  }
  if (argc >= 3 && strcmp(argv[1], "net-plug") == 0) {
    return cmd_net_plug(argv[2], argc - 3, argv + 3);
  }
  if (argc >= 2 && strcmp(argv[1], "net-del") == 0) {
    return cmd_net_del(argc - 2, argv + 2);
  }
  if (argc >= 5 && strcmp(argv[1], "run") == 0) {
    return cmd_run(parse_id(argv[2], "base"), parse_id(argv[3], "count"), argv + 4);
  }
  fprintf(stderr,
          "usage: berth-userns overlay BASE COUNT LAYER_ROOT TARGET OPTIONS\n"
          "       berth-userns run BASE COUNT CMD [ARGS...]\n"
          "       berth-userns net-new NETNS_FILE [VETH...]\n"
          "       berth-userns net-new-userns BASE COUNT USERNS_FILE NETNS_FILE [VETH...]\n"
          "       berth-userns net-plug NETNS_FILE VETH...\n"
          "       berth-userns net-del LINK...\n"
          "         (VETH: IFNAME HOST_END BRIDGE MAC ADDRESS/LEN GATEWAY|-)\n"
          "       berth-userns serve\n");
  return 2;
}

/* The commands `serve` runs: they print nothing on stdout and exec nothing. */
static int servable(int argc, char **argv) {
  return argc >= 2 && (strcmp(argv[1], "net-new") == 0 || strcmp(argv[1], "net-new-userns") == 0 || strcmp(argv[1], "net-plug") == 0 ||
                        strcmp(argv[1], "net-del") == 0);
}

/* Runs one request in a forked child; returns its exit code, its stderr in `message`. */
static int serve_one(int argc, char **argv, char *message, size_t size) {
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) < 0) {
    snprintf(message, size, "berth-userns: pipe: %s", strerror(errno));
    return 1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(message, size, "berth-userns: fork: %s", strerror(errno));
    close(err_pipe[0]);
    close(err_pipe[1]);
    return 1;
  }
  if (pid == 0) {
    /* Stdout is the protocol: the command's output of any kind goes to its message. */
    if (dup2(err_pipe[1], 1) < 0 || dup2(err_pipe[1], 2) < 0) _exit(1);
    _exit(dispatch(argc, argv));
  }
  close(err_pipe[1]);
  size_t used = 0;
  for (;;) {
    char chunk[512];
    ssize_t got = read(err_pipe[0], chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    size_t take = (size_t)got < size - 1 - used ? (size_t)got : size - 1 - used;
    memcpy(message + used, chunk, take);
    used += take;
  }
  close(err_pipe[0]);
  message[used] = '\0';
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * berth-userns serve: the net-* commands without a process start each. Berth keeps one
 * server running; each request is one line on stdin, the command's arguments separated by
 * tabs (none contains a tab or a newline), and each answer one line on stdout: the exit code,
 * a space, and what the command printed with newlines turned into spaces. Each request runs
 * in a child forked from this small process, so a namespace it enters or a failure it meets
 * never stays here. The server exits at the end of its input, and when Berth dies.
 */
static int cmd_serve(void) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("prctl");
  if (getppid() == 1) return 0; /* the parent died before prctl */
  static char line[65536];
  size_t filled = 0;
  for (;;) {
    char *end = memchr(line, '\n', filled);
    if (end == NULL) {
      if (filled == sizeof line) {
        fprintf(stderr, "berth-userns serve: request too long\n");
        return 1;
      }
      ssize_t got = read(0, line + filled, sizeof line - filled);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return 0;
      filled += (size_t)got;
      continue;
    }
    *end = '\0';
    char *argv[1024];
    int argc = 0;
    argv[argc++] = "berth-userns";
    for (char *field = line, *tab; argc < 1023; field = tab + 1) {
      tab = strchr(field, '\t');
      argv[argc++] = field;
      if (tab == NULL) break;
      *tab = '\0';
    }
    argv[argc] = NULL;
    static char message[4096];
    int code;
    if (servable(argc, argv)) {
      code = serve_one(argc, argv, message, sizeof message);
    } else {
      snprintf(message, sizeof message, "berth-userns serve: not a servable command: %s", argv[1]);
      code = 2;
    }
    for (char *c = message; *c; c++) {
      if (*c == '\n') *c = ' ';
    }
    size_t len = strlen(message);
    while (len > 0 && message[len - 1] == ' ') message[--len] = '\0';
    char answer[4200];
    int n = snprintf(answer, sizeof answer, "%d %s\n", code, message);
    if (write(1, answer, (size_t)n) != n) return 1;
    size_t rest = filled - (size_t)(end + 1 - line);
    memmove(line, end + 1, rest);
    filled = rest;
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "serve") == 0) return cmd_serve();
  return dispatch(argc, argv);
}
