/* fo-noring: runs a program where io_uring is refused, as a container runtime's default
 * seccomp profile refuses it: a seccomp filter makes io_uring_setup fail with EPERM, then
 * the program is executed. For the hub's fallback test (tests/test_hub_sync.c): the hub
 * must say why and write with send().
 *
 *   FO_NORING_EXEC=/path/to/program fo-noring ARGS...   (argv[0] is kept as given)
 *
 * No other system call is touched; the filter is inherited by the program and its
 * children and cannot be lifted (no_new_privs). */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *prog = getenv("FO_NORING_EXEC");
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* another arch: not ours to judge */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fp = {.len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f};

    (void)argc;
    if (!prog) {
        fprintf(stderr, "fo-noring: FO_NORING_EXEC is not set\n");
        return 127;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp)) {
        fprintf(stderr, "fo-noring: seccomp: %s\n", strerror(errno));
        return 127;
    }
    execv(prog, argv);
    fprintf(stderr, "fo-noring: %s: %s\n", prog, strerror(errno));
    return 127;
}
